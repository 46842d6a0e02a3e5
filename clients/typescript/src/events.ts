import { create } from "@bufbuild/protobuf";
import { type CallOptions, Code, ConnectError } from "@connectrpc/connect";
import { MailpoolError } from "./errors.js";
import type { Event } from "./gen/mailpool/v1/event_pb.js";
import {
  type IdentitySeq,
  type StreamEventsRequest,
  StreamEventsRequestSchema,
  type StreamEventsResponse,
} from "./gen/mailpool/v1/event_service_pb.js";

/** One item of an event subscription. */
export type StreamItem =
  /** The next event of one identity's log; never one already yielded. */
  | { readonly kind: "event"; readonly event: Event }
  /**
   * The backlog is sent: live events follow. Yielded once per connection, so
   * again after each reconnect. `heads` maps each followed identity to its head seq.
   */
  | { readonly kind: "caughtUp"; readonly heads: ReadonlyMap<string, bigint> }
  /** The stream was idle for 15 s; `heads` as for caughtUp (to checkpoint). */
  | { readonly kind: "heartbeat"; readonly heads: ReadonlyMap<string, bigint> };

/** What a reconnect is told about (see SubscribeOptions.onReconnect). */
export interface ReconnectInfo {
  /** 1 for the first reconnect after a working connection, then 2, 3, … */
  readonly attempt: number;
  /** How long the subscription waits before it reconnects. */
  readonly delayMs: number;
  /** What ended the previous connection. */
  readonly error: MailpoolError;
}

export interface SubscribeOptions {
  /** Stops the subscription: the iteration ends without an error. */
  readonly signal?: AbortSignal;
  /** First wait before a reconnect (default 100 ms); it doubles per failed attempt. */
  readonly initialBackoffMs?: number;
  /** Longest wait between reconnects (default 5000 ms). */
  readonly maxBackoffMs?: number;
  /**
   * Consecutive failed connections after which the iteration throws the last
   * error (default: never give up). A connection that delivers anything resets it.
   */
  readonly maxAttempts?: number;
  /** Told before each reconnect, e.g. to log it. */
  readonly onReconnect?: (info: ReconnectInfo) => void;
}

/**
 * A resumable subscription: an async iterable of StreamItems whose `positions`
 * hold the last seq yielded per identity (what it resumes from). Persist them
 * after handling an event and pass them as `since` to resume in another process.
 */
export interface EventSubscription extends AsyncIterable<StreamItem> {
  readonly positions: ReadonlyMap<string, bigint>;
}

export type StreamEventsFn = (
  request: StreamEventsRequest,
  options: CallOptions,
) => AsyncIterable<StreamEventsResponse>;

type Since = bigint | number;

/**
 * Follows StreamEvents across disconnects. Each (re)connection asks for seq >
 * the last seq yielded, per identity, so nothing is lost; an event at or below
 * that seq (which the server never sends on one stream, but a reconnect to a
 * lagging replica could) is dropped, so nothing is yielded twice. Errors that
 * repeating cannot fix (bad key, unknown identity, a since beyond the head…)
 * end the iteration with a MailpoolError; any other ends the connection, and the
 * subscription reconnects after an exponential backoff with jitter.
 */
export function subscribe(
  streamEvents: StreamEventsFn,
  target: { readonly identity: string } | { readonly wholeOrg: true },
  since: ReadonlyMap<string, Since>,
  options: SubscribeOptions = {},
): EventSubscription {
  const positions = new Map<string, bigint>();
  for (const [identity, seq] of since) {
    positions.set(identity, BigInt(seq));
  }
  const single = "identity" in target ? target.identity : undefined;
  const request = (): StreamEventsRequest =>
    single !== undefined
      ? create(StreamEventsRequestSchema, { identity: single, since: positions.get(single) ?? 0n })
      : create(StreamEventsRequestSchema, {
          wholeOrg: true,
          orgSince: [...positions].map(([identity, seq]) => ({ identity, seq })),
        });
  // One identity: the position is the requested handle's, whatever spelling the
  // server echoes in event.identity.
  const key = (event: Event): string => single ?? event.identity;

  async function* run(): AsyncGenerator<StreamItem, void, undefined> {
    const signal = options.signal;
    const initialBackoffMs = options.initialBackoffMs ?? 100;
    const maxBackoffMs = options.maxBackoffMs ?? 5000;
    const maxAttempts = options.maxAttempts ?? Infinity;
    let attempt = 0;
    while (!signal?.aborted) {
      // One controller per connection: aborted when the consumer stops iterating
      // (break/return runs the finally below) or the caller's signal fires.
      const connection = new AbortController();
      const stop = (): void => connection.abort();
      signal?.addEventListener("abort", stop, { once: true });
      let ended: MailpoolError;
      try {
        for await (const response of streamEvents(request(), { signal: connection.signal })) {
          attempt = 0;
          const message = response.message;
          switch (message.case) {
            case "event": {
              const event = message.value;
              const last = positions.get(key(event)) ?? 0n;
              if (event.seq <= last) {
                continue;
              }
              positions.set(key(event), event.seq);
              yield { kind: "event", event };
              break;
            }
            case "caughtUp":
              yield { kind: "caughtUp", heads: heads(message.value.heads) };
              break;
            case "heartbeat":
              yield { kind: "heartbeat", heads: heads(message.value.heads) };
              break;
          }
        }
        // The server never ends a stream without an error status; a proxy might.
        // Same as a dropped connection.
        ended = new MailpoolError(new ConnectError("the event stream ended", Code.Unavailable));
      } catch (error) {
        if (signal?.aborted) {
          return;
        }
        ended = MailpoolError.from(error);
        if (!ended.retryable) {
          throw ended;
        }
      } finally {
        signal?.removeEventListener("abort", stop);
        connection.abort();
      }
      attempt += 1;
      if (attempt >= maxAttempts) {
        throw ended;
      }
      const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** (attempt - 1));
      const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      options.onReconnect?.({ attempt, delayMs, error: ended });
      if (!(await pause(delayMs, signal))) {
        return;
      }
    }
  }

  const iterable = run();
  return {
    positions,
    [Symbol.asyncIterator]: () => iterable,
  };
}

function heads(list: readonly IdentitySeq[]): ReadonlyMap<string, bigint> {
  return new Map(list.map((h) => [h.identity, h.seq]));
}

/** Waits delayMs; false when the signal fired first. */
function pause(delayMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", done);
      resolve(true);
    }, delayMs);
    signal?.addEventListener("abort", done, { once: true });
  });
}
