// How long the operator API waits for a request to arrive. Node's own limit
// (server.requestTimeout) is one fixed time for every request on the server, which would cut a
// gigabyte firmware image on a slow link as it cuts a stalled JSON body. So Node's limit is off
// (its header limit stays) and these take its place:
// - every request must have arrived whole within the deadline (ACS_API_REQUEST_TIMEOUT_MS);
//   otherwise it gets 408 and the connection is closed;
// - a streamed upload, once authorised, may take as long as it keeps moving: it is cut only
//   when no byte came for the idle limit (ACS_API_UPLOAD_IDLE_MS).
// 0 switches a limit off.
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';

const deadlines = new WeakMap<IncomingMessage, NodeJS.Timeout>();
/** Requests answered 408 → the answer's message. */
const late = new WeakMap<IncomingMessage, string>();

/** Middleware: the request must have arrived whole within `ms`. */
export function receiveDeadline(ms: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (ms <= 0) return next();
    const timer = setTimeout(() => {
      if (req.complete) return;
      if (res.headersSent) {
        // Answered already (a refusal before the body was read): the rest is not worth waiting for.
        req.socket.destroy();
        return;
      }
      const message = `the request did not arrive whole within ${ms / 1000} s`;
      late.set(req, message);
      res.setHeader('Connection', 'close');
      res.status(408).json({ error: { status: 408, message } });
    }, ms);
    req.once('end', () => clearTimeout(timer));
    deadlines.set(req, timer);
    next();
  };
}

/** For a streamed upload: no deadline for the whole body, only for a pause in it. */
export function receiveWhileMoving(req: IncomingMessage, idleMs: number): void {
  clearTimeout(deadlines.get(req));
  req.setTimeout(idleMs, () => req.destroy(new Error(`no bytes of the upload for ${idleMs / 1000} s`)));
}

/**
 * Why the request was answered 408 while its body was being read, or undefined. A body that
 * completes in the moment between that answer and the connection's close must not be acted on.
 */
export function answeredLate(req: IncomingMessage): string | undefined {
  return late.get(req);
}
