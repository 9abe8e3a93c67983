// Small XML helpers for the CWMP codec: a synchronous, hardened wrapper around xml2js, accessors
// for the object tree it produces, namespace resolution, and the XML 1.0 text escape used by the
// string-template builder.

import { Parser } from 'xml2js';

/** Raised for anything that is not well-formed XML (or exceeds the structural limits below). */
export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';
}

/** Deepest element nesting accepted. CWMP envelopes need about 7 (SetParameterAttributes, Fault detail). */
export const MAX_XML_DEPTH = 64;

/** An element as xml2js represents it with the options below: its text, or an object of children. */
export type XObject = Record<string, unknown>;

// xml2js options, chosen for speed:
// - explicitArray:false  no one-element arrays for every child (repeated children still become arrays);
// - no trim/normalize/processors: the codec trims only the fields it reads;
// - strict (the default): sax rejects malformed markup.
// The default validator/async paths are off. One Parser is reused: xml2js already builds a fresh sax
// parser on every reset(), so a new Parser per call would only add option copying.
const parser = new Parser({
  explicitArray: false,
  explicitRoot: true,
  attrkey: '$',
  charkey: '_',
  trim: false,
  normalize: false,
  normalizeTags: false,
  emptyTag: '',
  async: false,
  strict: true,
});

/** The parts of xml2js's (untyped) sax parser this module hooks. */
interface SaxHooks {
  onopentag: (node: unknown) => void;
  onclosetag: (name: string) => void;
  onerror: (err: Error) => void;
}

/** "Unexpected close tag\nLine: 0\nColumn: 10\nChar: >" → one short printable line. */
function compactMessage(msg: string): string {
  const one = msg.split('\n').join(', ').replace(/[^\x20-\x7e]/g, '?');
  return one.length > 200 ? one.slice(0, 200) + '…' : one;
}

/**
 * Parses a whole document synchronously. With async:false xml2js drives sax in one write() call
 * and invokes the callback before parseString returns; this function relies on that and checks it.
 *
 * Hardening on top of xml2js:
 * - sax errors throw immediately (xml2js would otherwise keep going and, after content following
 *   the root element, leave its reused parser in a state that accepts the next malformed input);
 * - content after the root element (a second root) is an error;
 * - nesting deeper than maxDepth aborts at once, so deeply nested garbage costs no more than its
 *   first few bytes, and no recursion anywhere depends on input depth.
 * Returns { rootQName: rootValue }; throws XmlSyntaxError.
 */
export function parseXml(xml: string, maxDepth: number = MAX_XML_DEPTH): XObject {
  parser.reset(); // fresh sax parser + no stale listeners, whatever happened before
  const sax = (parser as unknown as { saxParser: SaxHooks }).saxParser;
  const open = sax.onopentag;
  const close = sax.onclosetag;
  let depth = 0;
  let rootClosed = false;
  sax.onopentag = (node) => {
    if (rootClosed) throw new XmlSyntaxError('content after the root element');
    if (++depth > maxDepth) throw new XmlSyntaxError(`elements nested deeper than ${maxDepth} levels`);
    open(node);
  };
  sax.onclosetag = (name) => {
    close(name);
    if (--depth === 0) rootClosed = true;
  };
  sax.onerror = (err) => {
    throw new XmlSyntaxError(compactMessage(err instanceof Error ? err.message : String(err)));
  };

  let done = false;
  let result: unknown;
  let error: unknown;
  try {
    parser.parseString(xml, (err, res) => {
      if (err) {
        if (error === undefined) error = err;
      } else if (!done) {
        done = true;
        result = res;
      }
    });
  } catch (e) {
    if (error === undefined) error = e;
  }
  if (error !== undefined) {
    parser.reset();
    if (error instanceof XmlSyntaxError) throw error;
    throw new XmlSyntaxError(compactMessage(error instanceof Error ? error.message : String(error)));
  }
  if (!done) throw new XmlSyntaxError('unexpected end of document'); // never seen: sax ends synchronously
  if (result === null || typeof result !== 'object') throw new XmlSyntaxError('empty document');
  if (!rootClosed) throw new XmlSyntaxError('unclosed root element');
  return result as XObject;
}

// ---- tree accessors ---------------------------------------------------------------------------
// xml2js gives, per element: '' (empty, no attributes), a string (text only), or an object with
// '$' (attributes), '_' (text, when mixed with attributes) and one key per child qualified name,
// whose value is one element or an array of repeated ones.

const hasOwn = Object.prototype.hasOwnProperty;

export function isObject(v: unknown): v is XObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// xml2js mishandles element names that exist on Object.prototype ("constructor", "toString",
// "__proto__"…): it merges the inherited value into an array with the real one. Such values are
// dropped here so they can never be mistaken for elements.
function isNode(x: unknown): boolean {
  return typeof x === 'string' || (typeof x === 'object' && x !== null && x !== Object.prototype && !Array.isArray(x));
}

function firstOf(v: unknown): unknown {
  if (!Array.isArray(v)) return isNode(v) ? v : undefined;
  for (const x of v) if (isNode(x)) return x;
  return undefined;
}

/** The local part of a qualified name. */
export function localName(qname: string): string {
  const i = qname.indexOf(':');
  return i < 0 ? qname : qname.slice(i + 1);
}

function matchesLocal(key: string, local: string): boolean {
  if (key === local) return true;
  const n = key.length - local.length;
  return n > 1 && key.charCodeAt(n - 1) === 58 /* ':' */ && key.endsWith(local);
}

/** First child element with that local name, whatever its prefix: [qualified name, value]. */
export function childEntry(node: unknown, local: string): [string, unknown] | undefined {
  if (!isObject(node)) return undefined;
  for (const k in node) {
    if (k === '$' || k === '_') continue;
    if (matchesLocal(k, local)) {
      const v = firstOf(node[k]);
      if (v !== undefined) return [k, v];
    }
  }
  return undefined;
}

/** First child element with that local name, or undefined. */
export function child(node: unknown, local: string): unknown {
  if (!isObject(node)) return undefined;
  for (const k in node) {
    if (k === '$' || k === '_') continue;
    if (matchesLocal(k, local)) {
      const v = firstOf(node[k]);
      if (v !== undefined) return v;
    }
  }
  return undefined;
}

/** All child elements with that local name (any prefix), in document order per qualified name. */
export function childrenNamed(node: unknown, local: string): unknown[] {
  const out: unknown[] = [];
  if (!isObject(node)) return out;
  for (const k in node) {
    if (k === '$' || k === '_' || !matchesLocal(k, local)) continue;
    pushAll(out, node[k]);
  }
  return out;
}

/** Every child element value, whatever its name (SOAP-encoded array items). */
export function childElements(node: unknown): unknown[] {
  const out: unknown[] = [];
  if (!isObject(node)) return out;
  for (const k in node) {
    if (k === '$' || k === '_') continue;
    pushAll(out, node[k]);
  }
  return out;
}

/** Every child element as [qualified name, value]. */
export function childEntries(node: unknown): [string, unknown][] {
  const out: [string, unknown][] = [];
  if (!isObject(node)) return out;
  for (const k in node) {
    if (k === '$' || k === '_') continue;
    const v = node[k];
    if (Array.isArray(v)) {
      for (const x of v) if (isNode(x)) out.push([k, x]);
    } else if (isNode(v)) {
      out.push([k, v]);
    }
  }
  return out;
}

function pushAll(out: unknown[], v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) if (isNode(x)) out.push(x);
  } else if (isNode(v)) {
    out.push(v);
  }
}

/** The text content of an element value ('' when it has none or only child elements). */
export function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.length > 0 ? textOf(v[0]) : '';
  if (isObject(v)) {
    const t = v._;
    return typeof t === 'string' ? t : '';
  }
  return '';
}

/** The attributes object of an element value, if any. */
export function attrsOf(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const a = v.$;
  return isObject(a) ? (a as Record<string, string>) : undefined;
}

/** An attribute by local name with any prefix (e.g. xsi:type, XSI:type); unprefixed only if local matches exactly and allowUnprefixed. */
export function attrByLocal(v: unknown, local: string, allowUnprefixed = false): string | undefined {
  const a = attrsOf(v);
  if (a === undefined) return undefined;
  for (const k in a) {
    if (k === local ? allowUnprefixed : matchesLocal(k, local)) {
      const val = a[k];
      return typeof val === 'string' ? val : undefined;
    }
  }
  return undefined;
}

/**
 * The namespace URI of a qualified element name, looking up xmlns declarations from the innermost
 * element outwards (scopes: the element's own value first, then its ancestors). '' when unbound.
 */
export function namespaceOf(qname: string, scopes: readonly unknown[]): string {
  const i = qname.indexOf(':');
  const decl = i < 0 ? 'xmlns' : 'xmlns:' + qname.slice(0, i);
  for (const s of scopes) {
    const a = attrsOf(s);
    if (a !== undefined && hasOwn.call(a, decl)) {
      const uri = a[decl];
      return typeof uri === 'string' ? uri : '';
    }
  }
  return '';
}

// ---- escaping ---------------------------------------------------------------------------------

// Anything needing escaping, or not allowed in XML 1.0 (Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] |
// [#xE000-#xFFFD] | [#x10000-#x10FFFF]); surrogates send the string to the slow path, which keeps
// well-formed pairs and drops lone halves.
const NEEDS_ESCAPE = /[&<>"'\r\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/;

/**
 * Escapes text for element content or attribute values: & < > " ' become entities, CR becomes
 * &#13; (a literal CR would be normalised away by the reader), and characters XML 1.0 cannot carry
 * at all (C0 controls other than TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF) are dropped.
 */
export function escapeXml(input: string): string {
  const s = typeof input === 'string' ? input : input == null ? '' : String(input);
  if (!NEEDS_ESCAPE.test(s)) return s;
  let out = '';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string;
    switch (c) {
      case 38:
        rep = '&amp;';
        break;
      case 60:
        rep = '&lt;';
        break;
      case 62:
        rep = '&gt;';
        break;
      case 34:
        rep = '&quot;';
        break;
      case 39:
        rep = '&apos;';
        break;
      case 13:
        rep = '&#13;';
        break;
      default:
        if (c < 0x20) {
          if (c === 9 || c === 10) continue;
          rep = '';
        } else if (c >= 0xd800 && c <= 0xdbff) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            i++; // well-formed pair: keep both halves
            continue;
          }
          rep = '';
        } else if ((c >= 0xdc00 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) {
          rep = '';
        } else {
          continue;
        }
    }
    out += s.slice(last, i) + rep;
    last = i + 1;
  }
  return out + s.slice(last);
}
