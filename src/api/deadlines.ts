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
      res.setHeader('Connection', 'close');
      res.status(408).json({ error: { status: 408, message: `the request did not arrive whole within ${ms / 1000} s` } });
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
