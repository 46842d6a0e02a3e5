// Sends one email, then prints the identity's event log up to now.
//
//   MAILPOOL_KEY=sk_live_…                       (required; `mailpool demo` prints one)
//   MAILPOOL_URL=http://127.0.0.1:50051          (the gRPC port of `mailpool serve`)
//   MAILPOOL_IDENTITY=demo@mailpool.local
//   MAILPOOL_TO=morgan@northwind.example
import {
  Code,
  createMailpoolClient,
  MailpoolError,
  RecipientStatus,
  RejectReason,
} from "../src/index.js";

const apiKey = process.env.MAILPOOL_KEY;
if (!apiKey) {
  console.error("set MAILPOOL_KEY (mailpool demo prints one)");
  process.exit(2);
}
const identity = process.env.MAILPOOL_IDENTITY ?? "demo@mailpool.local";
const to = process.env.MAILPOOL_TO ?? "morgan@northwind.example";
const client = createMailpoolClient({
  baseUrl: process.env.MAILPOOL_URL ?? "http://127.0.0.1:50051",
  apiKey,
});

try {
  const { response, replayed } = await client.send({
    identity,
    to: [to],
    subject: "Hello from TypeScript",
    text: "Sent with @mailpool/client.",
    // Running this again within the minute replays the first send instead of
    // sending twice: same key, same request.
    idempotencyKey: `example:${to}:${new Date().toISOString().slice(0, 16)}`,
  });
  console.log(`queued ${response.accepted}, ${response.remaining} left today${replayed ? " (replayed)" : ""}`);
  for (const r of response.results) {
    console.log(`  ${r.to}: ${RecipientStatus[r.status]} ${r.convId || RejectReason[r.rejectReason]}`);
  }
} catch (error) {
  if (!(error instanceof MailpoolError)) {
    throw error;
  }
  console.error(`send failed: ${Code[error.code]} ${error.reason ?? ""}: ${error.message}`);
  for (const r of error.sendResponse?.results ?? []) {
    console.error(`  ${r.to}: ${RejectReason[r.rejectReason]}`);
  }
  if (error.retryDelayMs !== undefined) {
    console.error(`  retry in ${Math.round(error.retryDelayMs / 60_000)} min`);
  }
}

// The log from the start; stop once the backlog is through.
for await (const item of client.events({ identity, since: 0 })) {
  if (item.kind === "event") {
    console.log(`#${item.event.seq} ${item.event.type} ${item.event.convId}`);
  } else if (item.kind === "caughtUp") {
    break;
  }
}
client.close();
