// The access-log format language (Envoy's substitution format strings): a format string
// is literal text and `%OPERATOR%`, `%OPERATOR(ARG)%` or `%OPERATOR(ARG):MAXLEN%`
// commands; `%%` is a literal percent sign. This module parses a string into its parts and
// knows every operator name: the config schema rejects a string that does not parse (an
// unknown operator is a typo, reported by name), and each worker compiles the parts once
// per snapshot (workers/access-log-format.ts). Envoy operators Remora has nothing for are
// known here too, so an Envoy format is accepted verbatim: they print `-`.

/** Whether an operator takes `(ARG)`. */
type ArgRule = 'none' | 'required' | 'optional';

/** One piece of a parsed format string. */
export type LogFormatPart =
  | { readonly kind: 'text'; readonly text: string }
  | {
      readonly kind: 'operator';
      readonly name: string;
      /** What is between the parentheses; null without any. */
      readonly arg: string | null;
      /** `:N` after the command: at most N characters are printed; 0 when not given. */
      readonly maxLength: number;
    };

/** Operators Remora fills in, and what each takes. */
const FILLED: Readonly<Record<string, ArgRule>> = {
  START_TIME: 'optional',
  REQ: 'required',
  REQ_WITHOUT_QUERY: 'required',
  PROTOCOL: 'none',
  RESPONSE_CODE: 'none',
  RESPONSE_FLAGS: 'none',
  RESPONSE_CODE_DETAILS: 'none',
  BYTES_RECEIVED: 'none',
  BYTES_SENT: 'none',
  DURATION: 'none',
  UPSTREAM_HOST: 'none',
  UPSTREAM_REMOTE_ADDRESS: 'none',
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: 'none',
  UPSTREAM_REMOTE_PORT: 'none',
  UPSTREAM_CLUSTER: 'none',
  UPSTREAM_CLUSTER_RAW: 'none',
  UPSTREAM_REQUEST_ATTEMPT_COUNT: 'none',
  UPSTREAM_ATTEMPT_DURATIONS: 'none',
  DOWNSTREAM_REMOTE_ADDRESS: 'none',
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: 'none',
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: 'none',
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: 'none',
  DOWNSTREAM_PEER_URI_SAN: 'none',
  REQUESTED_SERVER_NAME: 'none',
  FILTER_CHAIN_NAME: 'none',
  CONNECTION_TERMINATION_DETAILS: 'none',
  ROUTE_NAME: 'none',
  GRPC_STATUS: 'optional',
  GRPC_STATUS_NUMBER: 'none',
  TRACE_ID: 'none',
  REQUEST_ID: 'none',
  STREAM_ID: 'none',
  HOSTNAME: 'none',
  ENVIRONMENT: 'required',
};

/** Envoy operators Remora keeps nothing for: accepted, printed as `-` (no response
 *  headers or trailers are kept, no per-phase timings, no local or TLS details). */
const UNFILLED: Readonly<Record<string, ArgRule>> = {
  RESP: 'required',
  TRAILER: 'required',
  REQUEST_DURATION: 'none',
  REQUEST_TX_DURATION: 'none',
  RESPONSE_DURATION: 'none',
  RESPONSE_TX_DURATION: 'none',
  DOWNSTREAM_HANDSHAKE_DURATION: 'none',
  ROUNDTRIP_DURATION: 'none',
  COMMON_DURATION: 'required',
  START_TIME_LOCAL: 'optional',
  EMIT_TIME: 'optional',
  EMIT_TIME_LOCAL: 'optional',
  UPSTREAM_PROTOCOL: 'none',
  UPSTREAM_TRANSPORT_FAILURE_REASON: 'none',
  DOWNSTREAM_TRANSPORT_FAILURE_REASON: 'none',
  UPSTREAM_LOCAL_CLOSE_REASON: 'none',
  UPSTREAM_LOCAL_ADDRESS: 'none',
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: 'none',
  UPSTREAM_LOCAL_PORT: 'none',
  UPSTREAM_HOST_NAME: 'none',
  UPSTREAM_HOST_NAME_WITHOUT_PORT: 'none',
  UPSTREAM_CONNECTION_ID: 'none',
  UPSTREAM_PEER_URI_SAN: 'none',
  UPSTREAM_PEER_DNS_SAN: 'none',
  UPSTREAM_PEER_IP_SAN: 'none',
  UPSTREAM_PEER_SUBJECT: 'none',
  UPSTREAM_PEER_ISSUER: 'none',
  UPSTREAM_PEER_CERT: 'none',
  UPSTREAM_PEER_CERT_V_START: 'optional',
  UPSTREAM_PEER_CERT_V_END: 'optional',
  UPSTREAM_LOCAL_URI_SAN: 'none',
  UPSTREAM_LOCAL_DNS_SAN: 'none',
  UPSTREAM_LOCAL_IP_SAN: 'none',
  UPSTREAM_LOCAL_SUBJECT: 'none',
  UPSTREAM_TLS_CIPHER: 'none',
  UPSTREAM_TLS_VERSION: 'none',
  UPSTREAM_TLS_SESSION_ID: 'none',
  UPSTREAM_WIRE_BYTES_SENT: 'none',
  UPSTREAM_WIRE_BYTES_RECEIVED: 'none',
  UPSTREAM_HEADER_BYTES_SENT: 'none',
  UPSTREAM_HEADER_BYTES_RECEIVED: 'none',
  UPSTREAM_FILTER_STATE: 'required',
  UPSTREAM_METADATA: 'required',
  DOWNSTREAM_LOCAL_ADDRESS: 'none',
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: 'none',
  DOWNSTREAM_LOCAL_PORT: 'none',
  DOWNSTREAM_REMOTE_PORT: 'none',
  DOWNSTREAM_DIRECT_REMOTE_PORT: 'none',
  DOWNSTREAM_LOCAL_URI_SAN: 'none',
  DOWNSTREAM_LOCAL_DNS_SAN: 'none',
  DOWNSTREAM_LOCAL_IP_SAN: 'none',
  DOWNSTREAM_LOCAL_SUBJECT: 'none',
  DOWNSTREAM_PEER_DNS_SAN: 'none',
  DOWNSTREAM_PEER_IP_SAN: 'none',
  DOWNSTREAM_PEER_EMAIL_SAN: 'none',
  DOWNSTREAM_PEER_OTHERNAME_SAN: 'none',
  DOWNSTREAM_PEER_SUBJECT: 'none',
  DOWNSTREAM_PEER_ISSUER: 'none',
  DOWNSTREAM_PEER_SERIAL: 'none',
  DOWNSTREAM_PEER_CERT: 'none',
  DOWNSTREAM_PEER_CERT_V_START: 'optional',
  DOWNSTREAM_PEER_CERT_V_END: 'optional',
  DOWNSTREAM_PEER_FINGERPRINT_1: 'none',
  DOWNSTREAM_PEER_FINGERPRINT_256: 'none',
  DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1: 'none',
  DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256: 'none',
  DOWNSTREAM_PEER_CHAIN_SERIALS: 'none',
  DOWNSTREAM_TLS_CIPHER: 'none',
  DOWNSTREAM_TLS_VERSION: 'none',
  DOWNSTREAM_TLS_SESSION_ID: 'none',
  DOWNSTREAM_WIRE_BYTES_SENT: 'none',
  DOWNSTREAM_WIRE_BYTES_RECEIVED: 'none',
  DOWNSTREAM_HEADER_BYTES_SENT: 'none',
  DOWNSTREAM_HEADER_BYTES_RECEIVED: 'none',
  REQUEST_HEADERS_BYTES: 'none',
  RESPONSE_HEADERS_BYTES: 'none',
  RESPONSE_TRAILERS_BYTES: 'none',
  BYTES_RETRANSMITTED: 'none',
  PACKETS_RETRANSMITTED: 'none',
  RESPONSE_FLAGS_LONG: 'none',
  CONNECTION_ID: 'none',
  UNIQUE_ID: 'none',
  VIRTUAL_CLUSTER_NAME: 'none',
  LOCAL_REPLY_BODY: 'none',
  ACCESS_LOG_TYPE: 'none',
  CUSTOM_FLAGS: 'none',
  DYNAMIC_METADATA: 'required',
  CLUSTER_METADATA: 'required',
  METADATA: 'required',
  FILTER_STATE: 'required',
  QUERY_PARAM: 'required',
  PATH: 'optional',
};

/** Every operator name Remora accepts, with what it takes. */
const OPERATORS: ReadonlyMap<string, ArgRule> = new Map([...Object.entries(FILLED), ...Object.entries(UNFILLED)]);

/** Operators Remora fills in (the others print `-`). */
export const FILLED_OPERATORS: readonly string[] = Object.keys(FILLED);
/** Envoy operators Remora accepts and prints as `-`. */
export const UNFILLED_OPERATORS: readonly string[] = Object.keys(UNFILLED);

/** `%GRPC_STATUS(…)%` formats. */
export const GRPC_STATUS_FORMATS = ['CAMEL_STRING', 'SNAKE_STRING', 'NUMBER'];

/** Longest `:MAXLEN`. */
const MAX_LENGTH = 1_000_000;

/** The parts of a format string, or the problem with it (in the config's wording). */
export function parseLogFormat(format: string): { readonly parts: LogFormatPart[] } | { readonly problem: string } {
  const parts: LogFormatPart[] = [];
  let text = '';
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct === -1) {
      text += format.slice(i);
      break;
    }
    text += format.slice(i, pct);
    if (format.charCodeAt(pct + 1) === 0x25 /* % */) {
      text += '%';
      i = pct + 2;
      continue;
    }
    const command = readCommand(format, pct);
    if (typeof command === 'string') return { problem: command };
    if (text !== '') parts.push({ kind: 'text', text });
    text = '';
    parts.push(command.part);
    i = command.end;
  }
  if (text !== '') parts.push({ kind: 'text', text });
  return { parts };
}

/** The problem with a format string, for the config schema; undefined when it parses. */
export function logFormatProblem(format: string): string | undefined {
  if (format === '') return 'must not be empty';
  const r = parseLogFormat(format);
  return 'problem' in r ? r.problem : undefined;
}

const isNameChar = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f; // A-Z 0-9 _
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** The command starting at `start` (a `%`), or its problem. */
function readCommand(s: string, start: number): { part: LogFormatPart; end: number } | string {
  let i = start + 1;
  while (i < s.length && isNameChar(s.charCodeAt(i))) i++;
  const name = s.slice(start + 1, i);
  const where = `at position ${start}`;
  if (name === '') {
    return `"%" ${where} does not start an operator such as %START_TIME% (write %% for a literal percent sign)`;
  }
  let arg: string | null = null;
  if (s[i] === '(') {
    const close = s.indexOf(')', i);
    if (close === -1) return `%${name}( ${where} has no closing ")"`;
    arg = s.slice(i + 1, close);
    i = close + 1;
  }
  let maxLength = 0;
  if (s[i] === ':') {
    const from = i + 1;
    i = from;
    while (i < s.length && isDigit(s.charCodeAt(i))) i++;
    maxLength = Number(s.slice(from, i));
    if (i === from || maxLength < 1 || maxLength > MAX_LENGTH) return `%${name}…:${s.slice(from, i)} ${where}: the length after ":" must be an integer 1..${MAX_LENGTH}`;
  }
  if (s[i] !== '%') return `%${name}${arg === null ? '' : `(${arg})`} ${where} is not closed by "%"`;
  const rule = OPERATORS.get(name);
  if (rule === undefined) return `unknown operator %${name}% ${where}`;
  const problem = argProblem(name, rule, arg);
  if (problem !== undefined) return `%${name}% ${where}: ${problem}`;
  return { part: { kind: 'operator', name, arg, maxLength }, end: i + 1 };
}

function argProblem(name: string, rule: ArgRule, arg: string | null): string | undefined {
  if (rule === 'none') return arg === null ? undefined : 'takes no argument in parentheses';
  if (arg === null) return rule === 'required' ? `needs an argument, e.g. %${name}(${name.startsWith('REQ') || name === 'RESP' || name === 'TRAILER' ? 'USER-AGENT' : 'NAME'})%` : undefined;
  switch (name) {
    case 'REQ':
    case 'REQ_WITHOUT_QUERY':
    case 'RESP':
    case 'TRAILER': {
      const names = arg.split('?');
      if (names.length > 2) return `"${arg}": at most one alternative header ("NAME?ALTERNATIVE")`;
      if (names.some((n) => !/^:?[!#$&'*+\-.^_`|~0-9A-Za-z]+$/.test(n))) return `"${arg}" is not a header name (or "NAME?ALTERNATIVE")`;
      return undefined;
    }
    case 'GRPC_STATUS':
      return GRPC_STATUS_FORMATS.includes(arg) ? undefined : `"${arg}" is not one of ${GRPC_STATUS_FORMATS.join(', ')}`;
    case 'ENVIRONMENT':
      return arg === '' ? 'needs a variable name' : undefined;
    default:
      return undefined;
  }
}
