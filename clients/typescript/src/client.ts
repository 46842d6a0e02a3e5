import type { MessageInitShape } from "@bufbuild/protobuf";
import { type CallOptions, type Client, type Interceptor, createClient } from "@connectrpc/connect";
import { type GrpcTransportOptions, Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { MailpoolError } from "./errors.js";
import { type EventSubscription, type SubscribeOptions, subscribe } from "./events.js";
import {
  ConversationService,
  type GetConversationRequestSchema,
  type GetConversationResponse,
  type ListConversationsRequestSchema,
  type ListConversationsResponse,
} from "./gen/mailpool/v1/conversation_service_pb.js";
import {
  EventService,
  type ListEventsRequestSchema,
  type ListEventsResponse,
} from "./gen/mailpool/v1/event_service_pb.js";
import {
  type GetIdentityRequestSchema,
  type GetIdentityResponse,
  IdentityService,
  type ListIdentitiesRequestSchema,
  type ListIdentitiesResponse,
} from "./gen/mailpool/v1/identity_service_pb.js";
import {
  type SendRequestSchema,
  type SendResponse,
  SendService,
} from "./gen/mailpool/v1/send_service_pb.js";

/** The response metadata key of a replayed send. */
export const REPLAYED_HEADER = "idempotent-replayed";

export interface MailpoolClientOptions {
  /** Where the gRPC server listens, e.g. "http://127.0.0.1:50051" (https for TLS). */
  readonly baseUrl: string;
  /** An org API key, "sk_live_…"; sent as `authorization: Bearer <key>` on every call. */
  readonly apiKey: string;
  /**
   * HTTP/2 keepalive: a PING every this many ms on an open connection, so that a
   * stream over a dead connection fails (and reconnects) instead of hanging.
   * Default 30000; the server refuses pings more often than every 10 s.
   */
  readonly pingIntervalMs?: number;
  /** More interceptors, run after the one that adds the API key. */
  readonly interceptors?: readonly Interceptor[];
  /** Node http2 options, e.g. TLS settings (`ca`, `servername`). */
  readonly nodeOptions?: GrpcTransportOptions["nodeOptions"];
}

/** A Send's response, and whether it was a replay of an earlier one (same idempotency key). */
export interface SendResult {
  readonly response: SendResponse;
  readonly replayed: boolean;
}

/** Where a whole-org subscription starts: the last seq handled per identity (others from 0). */
export type OrgSince = ReadonlyMap<string, bigint | number> | Readonly<Record<string, bigint | number>>;

export interface MailpoolClient {
  /**
   * Queues email (SendService.Send). Resolves when at least one recipient was
   * queued (the rejected ones are in `response.results` too). Rejects with a
   * MailpoolError: on a whole rejection its code is RESOURCE_EXHAUSTED and
   * `sendResponse` holds every recipient's reason.
   */
  send(request: MessageInitShape<typeof SendRequestSchema>, options?: CallOptions): Promise<SendResult>;
  getIdentity(
    request: MessageInitShape<typeof GetIdentityRequestSchema>,
    options?: CallOptions,
  ): Promise<GetIdentityResponse>;
  listIdentities(
    request?: MessageInitShape<typeof ListIdentitiesRequestSchema>,
    options?: CallOptions,
  ): Promise<ListIdentitiesResponse>;
  listConversations(
    request: MessageInitShape<typeof ListConversationsRequestSchema>,
    options?: CallOptions,
  ): Promise<ListConversationsResponse>;
  getConversation(
    request: MessageInitShape<typeof GetConversationRequestSchema>,
    options?: CallOptions,
  ): Promise<GetConversationResponse>;
  /** One page of an identity's log (long-polls up to timeoutMs when empty). */
  listEvents(
    request: MessageInitShape<typeof ListEventsRequestSchema>,
    options?: CallOptions,
  ): Promise<ListEventsResponse>;
  /**
   * Follows one identity's log from seq > since (default 0: the whole log),
   * reconnecting after any disconnect from the last seq yielded.
   */
  events(options: { identity: string; since?: bigint | number } & SubscribeOptions): EventSubscription;
  /**
   * Follows every identity of the key's org (identities created later included),
   * reconnecting after any disconnect from the last seq yielded per identity.
   */
  orgEvents(options?: { since?: OrgSince } & SubscribeOptions): EventSubscription;
  /** The generated Connect clients (they throw ConnectError, not MailpoolError). */
  readonly raw: {
    readonly send: Client<typeof SendService>;
    readonly identities: Client<typeof IdentityService>;
    readonly conversations: Client<typeof ConversationService>;
    readonly events: Client<typeof EventService>;
  };
  /** Closes the HTTP/2 connection; calls in flight fail. */
  close(): void;
}

/** Calls `call`, turning whatever it throws into a MailpoolError. */
async function wrap<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw MailpoolError.from(error);
  }
}

export function createMailpoolClient(options: MailpoolClientOptions): MailpoolClient {
  const authorization = `Bearer ${options.apiKey}`;
  const auth: Interceptor = (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
  const pingIntervalMs = options.pingIntervalMs ?? 30_000;
  // Our own session manager, so that close() can end the connection.
  const sessionManager = new Http2SessionManager(
    options.baseUrl,
    { pingIntervalMs, pingTimeoutMs: 15_000 },
    options.nodeOptions,
  );
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager,
    interceptors: [auth, ...(options.interceptors ?? [])],
  });
  const raw = {
    send: createClient(SendService, transport),
    identities: createClient(IdentityService, transport),
    conversations: createClient(ConversationService, transport),
    events: createClient(EventService, transport),
  };
  const streamEvents = raw.events.streamEvents.bind(raw.events);

  return {
    raw,
    async send(request, callOptions) {
      let replayed = false;
      const response = await wrap(() =>
        raw.send.send(request, {
          ...callOptions,
          onHeader(headers) {
            replayed = headers.get(REPLAYED_HEADER) === "true";
            callOptions?.onHeader?.(headers);
          },
        }),
      );
      return { response, replayed };
    },
    getIdentity: (request, callOptions) => wrap(() => raw.identities.getIdentity(request, callOptions)),
    listIdentities: (request = {}, callOptions) =>
      wrap(() => raw.identities.listIdentities(request, callOptions)),
    listConversations: (request, callOptions) =>
      wrap(() => raw.conversations.listConversations(request, callOptions)),
    getConversation: (request, callOptions) =>
      wrap(() => raw.conversations.getConversation(request, callOptions)),
    listEvents: (request, callOptions) => wrap(() => raw.events.listEvents(request, callOptions)),
    events({ identity, since = 0n, ...subscribeOptions }) {
      return subscribe(streamEvents, { identity }, new Map([[identity, since]]), subscribeOptions);
    },
    orgEvents({ since = new Map(), ...subscribeOptions } = {}) {
      const start = since instanceof Map ? since : new Map(Object.entries(since));
      return subscribe(streamEvents, { wholeOrg: true }, start, subscribeOptions);
    },
    close() {
      sessionManager.abort();
    },
  };
}
