import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Code,
  createMailpoolClient,
  type EventSubscription,
  type MailpoolClient,
  MailpoolError,
  type ReconnectInfo,
  type StreamItem,
} from "../src/index.js";
import { Sandbox, type Server } from "./mailpool-process.js";

const WAIT_MS = 30_000;

/**
 * Drains a subscription in the background, so that several can be followed at
 * once; `until` waits (bounded) for a condition on what has arrived.
 */
class Collector {
  readonly items: StreamItem[] = [];
  readonly done: Promise<void>;
  private wake: () => void = () => {};

  constructor(subscription: EventSubscription) {
    this.done = (async () => {
      try {
        for await (const item of subscription) {
          this.items.push(item);
          this.wake();
        }
      } finally {
        this.wake();
      }
    })();
    // Surfaced by `until` and by awaiting `done`; never an unhandled rejection.
    this.done.catch(() => {});
  }

  get seqs(): bigint[] {
    return this.items.flatMap((item) => (item.kind === "event" ? [item.event.seq] : []));
  }

  count(kind: StreamItem["kind"]): number {
    return this.items.filter((item) => item.kind === kind).length;
  }

  async until(what: string, condition: () => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let finished = false;
    void this.done.then(
      () => (finished = true),
      () => (finished = true),
    );
    while (!condition()) {
      if (finished) {
        await this.done;
        assert.fail(`the subscription ended before: ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        assert.fail(`timed out waiting for: ${what} (have ${JSON.stringify(this.seqs.map(String))})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

describe("event subscriptions against mailpool serve", { timeout: 180_000 }, () => {
  let sandbox: Sandbox;
  let server: Server;
  let client: MailpoolClient;
  // Aborted after the tests, so that a failed test leaves no subscription retrying.
  const stops: AbortController[] = [];
  const stopper = (): AbortController => {
    const stop = new AbortController();
    stops.push(stop);
    return stop;
  };

  before(async () => {
    sandbox = await Sandbox.create();
    server = await sandbox.serve();
    client = createMailpoolClient({ baseUrl: server.baseUrl, apiKey: sandbox.apiKey });
  });

  after(async () => {
    for (const stop of stops) {
      stop.abort();
    }
    client?.close();
    await server?.stop();
    await sandbox?.remove();
  });

  async function sendOne(n: number): Promise<void> {
    const { response } = await client.send({
      identity: sandbox.identity,
      to: [`reader${n}@northwind.example`],
      subject: `Message ${n}`,
      text: "Hello",
    });
    assert.equal(response.accepted, 1);
  }

  test("a stream survives a server restart without a gap or a repeat", async () => {
    // Two events in the backlog before anyone subscribes.
    await sendOne(1);
    await sendOne(2);

    const stop = stopper();
    const reconnects: ReconnectInfo[] = [];
    // A short backoff ceiling: the restart takes a few seconds, no need to wait 5 more.
    const options = {
      signal: stop.signal,
      maxBackoffMs: 500,
      onReconnect: (info: ReconnectInfo) => reconnects.push(info),
    };
    const one = new Collector(client.events({ identity: sandbox.identity, ...options }));
    const org = new Collector(client.orgEvents(options));

    await one.until("the backlog and caught_up", () => one.seqs.length === 2 && one.count("caughtUp") === 1);
    await org.until("the backlog and caught_up (org)", () => org.seqs.length === 2 && org.count("caughtUp") === 1);
    const caughtUp = one.items.find((item) => item.kind === "caughtUp");
    assert.equal(caughtUp?.kind === "caughtUp" && caughtUp.heads.get(sandbox.identity), 2n);

    // A live event.
    await sendOne(3);
    await one.until("seq 3 live", () => one.seqs.includes(3n));
    await org.until("seq 3 live (org)", () => org.seqs.includes(3n));

    // Stop the server (streams end with UNAVAILABLE / SHUTTING_DOWN), start it again
    // on the same port and database; the subscriptions reconnect on their own.
    const port = server.port;
    await server.stop();
    server = await sandbox.serve(port);
    assert.equal(server.port, port);

    await sendOne(4);
    await sendOne(5);
    await sendOne(6);
    // The new connection's caught_up may follow its backlog (4..6) or precede live
    // events: wait for both, whatever the order.
    await one.until("seqs up to 6 and caught_up again", () => one.seqs.includes(6n) && one.count("caughtUp") >= 2);
    await org.until(
      "seqs up to 6 and caught_up again (org)",
      () => org.seqs.includes(6n) && org.count("caughtUp") >= 2,
    );

    const expected = [1n, 2n, 3n, 4n, 5n, 6n];
    assert.deepEqual(one.seqs, expected);
    assert.deepEqual(org.seqs, expected);
    for (const collector of [one, org]) {
      assert.ok(collector.items.every((i) => i.kind !== "event" || i.event.type === "email.queued"));
      // One caught_up per connection: the first, and one after the restart (the
      // stopping server refuses new subscriptions, so there is no third).
      assert.equal(collector.count("caughtUp"), 2);
    }
    assert.ok(reconnects.length >= 2, "both subscriptions reconnected");
    assert.ok(reconnects.every((r) => r.error.retryable));
    for (const collector of [one, org]) {
      // Nothing else (heartbeats aside: 15 s of quiet would bring one).
      assert.equal(
        collector.items.filter((i) => i.kind === "event").length + collector.count("caughtUp"),
        collector.items.filter((i) => i.kind !== "heartbeat").length,
      );
    }

    // Positions say where to resume in another process.
    const sub = client.events({ identity: sandbox.identity, since: 4, signal: stop.signal });
    const resumed = new Collector(sub);
    await resumed.until("5 and 6 after since=4", () => resumed.seqs.length === 2);
    assert.deepEqual(resumed.seqs, [5n, 6n]);
    assert.equal(sub.positions.get(sandbox.identity), 6n);

    // The signal ends every iteration, without an error.
    stop.abort();
    await Promise.all([one.done, org.done, resumed.done]);
  });

  test("a since beyond the head fails with OUT_OF_RANGE / SEQ_IN_FUTURE, no retry", async () => {
    const reconnects: ReconnectInfo[] = [];
    const subscription = client.events({
      identity: sandbox.identity,
      since: 1000,
      signal: stopper().signal,
      onReconnect: (info) => reconnects.push(info),
    });
    await assert.rejects(
      async () => {
        for await (const _ of subscription) {
          // nothing arrives
        }
      },
      (error: unknown) => {
        assert.ok(error instanceof MailpoolError);
        assert.equal(error.code, Code.OutOfRange);
        assert.equal(error.reason, "SEQ_IN_FUTURE");
        return true;
      },
    );
    assert.equal(reconnects.length, 0);
  });

  test("breaking out of the loop ends the stream", async () => {
    for await (const item of client.events({ identity: sandbox.identity, signal: stopper().signal })) {
      assert.equal(item.kind, "event");
      break;
    }
  });
});
