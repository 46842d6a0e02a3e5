import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { type SendResponse, SendResponseSchema } from "./gen/mailpool/v1/send_service_pb.js";

/** A field the server refused, from google.rpc.BadRequest. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * Codes after which the same call cannot succeed: the request, the key or the
 * position is wrong. Everything else (UNAVAILABLE, INTERNAL, a reset connection…)
 * is worth retrying; a send with the same idempotency key never executes twice.
 */
const PERMANENT: ReadonlySet<Code> = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unimplemented,
]);

/**
 * A failed mailpool call. Branch on `code` and `reason`, never on `message`.
 *
 * The server sends a rich google.rpc.Status (trailer `grpc-status-details-bin`):
 * `message` is the contract's `error` text, `reason` comes from its
 * google.rpc.ErrorInfo (an ErrorReason name without the `ERROR_REASON_` prefix,
 * e.g. `"CAP_EXCEEDED"`), `metadata` is the ErrorInfo metadata (the HTTP API's
 * `details`), `retryDelayMs` comes from RetryInfo (caps: until midnight UTC), and
 * `fieldViolations` from BadRequest.
 */
export class MailpoolError extends Error {
  override readonly name = "MailpoolError";
  /** The gRPC status code (Connect's `Code`, numbered as in gRPC). */
  readonly code: Code;
  /** ErrorInfo.reason, e.g. "IDENTITY_NOT_FOUND"; undefined when the server sent none. */
  readonly reason: string | undefined;
  /** ErrorInfo.metadata, e.g. {"handle": "…"}. */
  readonly metadata: Readonly<Record<string, string>>;
  /** From RetryInfo: how long to wait before the same call can succeed. */
  readonly retryDelayMs: number | undefined;
  /** From BadRequest, for INVALID_ARGUMENT. */
  readonly fieldViolations: readonly FieldViolation[];
  /**
   * On a whole rejection of a Send (RESOURCE_EXHAUSTED): the full result, with
   * `accepted` 0 and every recipient's `rejectReason`.
   */
  readonly sendResponse: SendResponse | undefined;
  /** The trailers and headers of the failed call. */
  readonly responseMetadata: Headers;
  override readonly cause: ConnectError;

  constructor(cause: ConnectError) {
    super(cause.rawMessage);
    this.cause = cause;
    this.code = cause.code;
    this.responseMetadata = cause.metadata;
    const info = cause.findDetails(ErrorInfoSchema)[0];
    this.reason = info?.reason || undefined;
    this.metadata = { ...(info?.metadata ?? {}) };
    const retry = cause.findDetails(RetryInfoSchema)[0]?.retryDelay;
    this.retryDelayMs =
      retry === undefined ? undefined : Number(retry.seconds) * 1000 + Math.round(retry.nanos / 1e6);
    this.fieldViolations = cause
      .findDetails(BadRequestSchema)
      .flatMap((b) => b.fieldViolations.map(({ field, description }) => ({ field, description })));
    this.sendResponse = cause.findDetails(SendResponseSchema)[0];
  }

  /** False when repeating the same call cannot help (see PERMANENT above). */
  get retryable(): boolean {
    return !PERMANENT.has(this.code);
  }

  /** Wraps whatever a Connect call threw (a ConnectError, or anything else as UNKNOWN). */
  static from(error: unknown): MailpoolError {
    if (error instanceof MailpoolError) {
      return error;
    }
    return new MailpoolError(ConnectError.from(error));
  }
}
