/**
 * mailpool's TypeScript client: the generated mailpool.v1 types and services
 * (protoc-gen-es) plus a thin layer: API key on every call, typed errors, and
 * resumable event subscriptions.
 */
export {
  createMailpoolClient,
  REPLAYED_HEADER,
  type MailpoolClient,
  type MailpoolClientOptions,
  type OrgSince,
  type SendResult,
} from "./client.js";
export { MailpoolError, type FieldViolation } from "./errors.js";
export {
  type EventSubscription,
  type ReconnectInfo,
  type StreamItem,
  type SubscribeOptions,
} from "./events.js";
export { Code, ConnectError } from "@connectrpc/connect";
export * from "./gen/mailpool/v1/conversation_pb.js";
export * from "./gen/mailpool/v1/conversation_service_pb.js";
export * from "./gen/mailpool/v1/error_pb.js";
export * from "./gen/mailpool/v1/event_pb.js";
export * from "./gen/mailpool/v1/event_service_pb.js";
export * from "./gen/mailpool/v1/identity_pb.js";
export * from "./gen/mailpool/v1/identity_service_pb.js";
export * from "./gen/mailpool/v1/mailbox_pb.js";
export * from "./gen/mailpool/v1/send_pb.js";
export * from "./gen/mailpool/v1/send_service_pb.js";
export {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
  type RetryInfo,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
