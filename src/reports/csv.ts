// CSV for the report tables (RFC 4180: comma separated, CRLF line ends, fields with a comma,
// quote or line break quoted). Every report route answers `format=csv` with the same rows as its
// JSON `items`, in the same column order: numbers as JSON writes them, null as an empty field,
// lists joined with ";". Streamed row by row with backpressure, so a year of a large fleet
// never sits in memory. Text starting with = + @ is prefixed with ' (spreadsheet formula
// injection); device ids and versions never start so in practice.
import type { Response } from 'express';

export type Cell = string | number | boolean | null | undefined | readonly (string | number)[];

export function csvCell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return csvCell(v.join(';'));
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = String(v);
  if (/^[=+@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: readonly Cell[]): string {
  return values.map(csvCell).join(',') + '\r\n';
}

/** Writes rows as CSV to the response, waiting for the socket to drain; ends the response. */
export async function streamCsv<T extends object>(res: Response, filename: string, columns: readonly (keyof T & string)[], rows: AsyncIterable<T> | Iterable<T>): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/[^A-Za-z0-9_.-]/g, '_')}"`);
  const write = async (chunk: string) => {
    if (res.destroyed) throw new Error('the client went away');
    if (!res.write(chunk)) await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  };
  await write(csvLine(columns));
  let buf = '';
  try {
    for await (const row of rows as AsyncIterable<T>) {
      buf += csvLine(columns.map((c) => (row as Record<string, Cell>)[c]));
      if (buf.length > 64 * 1024) {
        await write(buf);
        buf = '';
      }
    }
    if (buf) await write(buf);
  } catch (err) {
    // Headers are out: say so in the file rather than end it silently short.
    if (!res.destroyed) res.end(`${buf}# error: the report stopped: ${(err as Error).message.replace(/[\r\n]/g, ' ')}\r\n`);
    throw err;
  }
  res.end();
}

/** Parses CSV written by csvLine (tests and tools). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}
