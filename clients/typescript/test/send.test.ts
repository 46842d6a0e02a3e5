import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { equals } from "@bufbuild/protobuf";
import {
  Code,
  createMailpoolClient,
  type MailpoolClient,
  MailpoolError,
  RecipientStatus,
  RejectReason,
  SendResponseSchema,
} from "../src/index.js";
import { Sandbox, type Server } from "./mailpool-process.js";

/** Runs `call`, which must fail, and returns its MailpoolError. */
async function failure(call: () => Promise<unknown>): Promise<MailpoolError> {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof MailpoolError, `not a MailpoolError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("send against mailpool serve", { timeout: 120_000 }, () => {
  let sandbox: Sandbox;
  let server: Server;
  let client: MailpoolClient;

  before(async () => {
    sandbox = await Sandbox.create();
    server = await sandbox.serve();
    client = createMailpoolClient({ baseUrl: server.baseUrl, apiKey: sandbox.apiKey });
  });

  after(async () => {
    client?.close();
    await server?.stop();
    await sandbox?.remove();
  });

  test("send queues a recipient", async () => {
    const { response, replayed } = await client.send({
      identity: sandbox.identity,
      to: ["morgan@northwind.example"],
      subject: "Hi",
      text: "Hello",
    });
    assert.equal(replayed, false);
    assert.equal(response.identity, sandbox.identity);
    assert.equal(response.accepted, 1);
    assert.equal(response.rejected, 0);
    const [result] = response.results;
    assert.equal(result?.status, RecipientStatus.QUEUED);
    assert.match(result?.convId ?? "", /^conv_[0-9a-f]+$/);
    assert.match(result?.pendingId ?? "", /^psn_[0-9a-f]+$/);
    assert.match(result?.account?.id ?? "", /^acc_[0-9a-f]+$/);
  });

  test("a repeated idempotency key replays the stored response", async () => {
    const request = {
      identity: sandbox.identity,
      to: ["riley@northwind.example"],
      subject: "Once",
      text: "Only once",
      idempotencyKey: "lead-42:step-3",
    };
    const head = async () =>
      (await client.getIdentity({ identity: sandbox.identity })).identity?.headSeq ?? -1n;
    const before = await head();
    const first = await client.send(request);
    const second = await client.send(request);
    assert.equal(first.replayed, false);
    assert.equal(second.replayed, true);
    assert.ok(equals(SendResponseSchema, first.response, second.response));
    // Sent once: one email.queued event, not two.
    assert.equal(await head(), before + 1n);
  });

  test("the same key with another body is ABORTED / IDEMPOTENCY_KEY_REUSED", async () => {
    const request = { identity: sandbox.identity, to: ["sam@northwind.example"], subject: "A", text: "a" };
    await client.send({ ...request, idempotencyKey: "reuse-1" });
    const error = await failure(() => client.send({ ...request, text: "b", idempotencyKey: "reuse-1" }));
    assert.equal(error.code, Code.Aborted);
    assert.equal(error.reason, "IDEMPOTENCY_KEY_REUSED");
    assert.equal(error.message, "Idempotency-Key reused with a different body");
  });

  test("a whole rejection is RESOURCE_EXHAUSTED with every recipient's reason", async () => {
    const error = await failure(() =>
      client.send({
        identity: sandbox.identity,
        to: ["not-an-address", "also not one"],
        subject: "Hi",
        text: "Hello",
      }),
    );
    assert.equal(error.code, Code.ResourceExhausted);
    assert.equal(error.reason, "RECIPIENTS_REJECTED");
    assert.equal(error.retryable, true);
    assert.equal(error.retryDelayMs, undefined, "waiting does not fix an invalid address");
    assert.ok(error.message.length > 0);
    const detail = error.sendResponse;
    assert.ok(detail, "the SendResponse detail is decoded");
    assert.equal(detail.identity, sandbox.identity);
    assert.equal(detail.accepted, 0);
    assert.equal(detail.rejected, 2);
    assert.deepEqual(
      detail.results.map((r) => [r.to, r.status, r.rejectReason]),
      [
        ["not-an-address", RecipientStatus.REJECTED, RejectReason.INVALID_RECIPIENT],
        ["also not one", RecipientStatus.REJECTED, RejectReason.INVALID_RECIPIENT],
      ],
    );
  });

  test("errors carry code, reason, metadata and field violations", async () => {
    const unknown = await failure(() => client.getIdentity({ identity: "nobody@mailpool.local" }));
    assert.equal(unknown.code, Code.NotFound);
    assert.equal(unknown.reason, "IDENTITY_NOT_FOUND");
    assert.equal(unknown.message, "identity not found in org");
    assert.equal(unknown.metadata.handle, "nobody@mailpool.local");
    assert.equal(unknown.retryable, false);

    const invalid = await failure(() =>
      client.send({ identity: sandbox.identity, to: ["a@example.com"], subject: "no body" }),
    );
    assert.equal(invalid.code, Code.InvalidArgument);
    assert.ok(invalid.fieldViolations.length > 0, "BadRequest field violations are decoded");

    const badKey = createMailpoolClient({ baseUrl: server.baseUrl, apiKey: "sk_live_0000" });
    try {
      const denied = await failure(() => badKey.listIdentities());
      assert.equal(denied.code, Code.Unauthenticated);
      assert.equal(denied.reason, "API_KEY_INVALID");
      assert.equal(denied.message, "invalid api key");
    } finally {
      badKey.close();
    }
  });

  // Last: it uses up the identity's daily cap.
  test("a send over the daily cap is CAP_EXCEEDED with RetryInfo until midnight UTC", async () => {
    // The demo identity is a starter (150 a UTC day); 50 recipients is a send's most.
    let error: MailpoolError | undefined;
    for (let batch = 0; batch < 4 && error === undefined; batch++) {
      const to = Array.from({ length: 50 }, (_, i) => `reader${batch}.${i}@northwind.example`);
      try {
        await client.send({ identity: sandbox.identity, to, subject: "Hi", text: "Hello" });
      } catch (caught) {
        assert.ok(caught instanceof MailpoolError);
        error = caught;
      }
    }
    assert.ok(error, "the cap was never reached");
    assert.equal(error.code, Code.ResourceExhausted);
    assert.equal(error.reason, "CAP_EXCEEDED");
    assert.ok(error.sendResponse?.results.every((r) => r.rejectReason === RejectReason.CAP_EXCEEDED));
    assert.equal(error.sendResponse?.remaining, 0);
    const untilMidnight = 86_400_000 - (Date.now() % 86_400_000);
    assert.ok(error.retryDelayMs !== undefined && error.retryDelayMs > 0);
    assert.ok(Math.abs(error.retryDelayMs - untilMidnight) < 60_000, `${error.retryDelayMs} vs ${untilMidnight}`);
  });
});
