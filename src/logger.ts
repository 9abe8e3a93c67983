// Structured JSON logs (pino). Errors are logged with a message and context, never a stack in
// an HTTP response.
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    // Secrets must never reach the logs, whatever a caller passes in.
    redact: { paths: ['*.password', '*.cpePassword', 'password', 'authorization', '*.authorization'], censor: '[redacted]' },
  });
}
