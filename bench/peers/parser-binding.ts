// Node's own llhttp binding, as node:http uses it (`_http_common`'s HTTPParser), for the
// benchmark peers that parse requests without node:http's server objects. Not a public
// API: present in Node 20 and 24 with these members.

import { createRequire } from 'node:module';

export interface ParserBinding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  close(): void;
  [callback: number]: (...args: unknown[]) => number | void;
}

export interface ParserClass {
  new (): ParserBinding;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

/** A request parser whose kOnHeadersComplete calls `onHead(url)`; bodies are ignored. */
export function requestParser(onHead: (url: string) => void): ParserBinding {
  const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass };
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 16 * 1024, 0);
  parser[HTTPParser.kOnHeaders] = () => undefined;
  parser[HTTPParser.kOnBody] = () => undefined;
  parser[HTTPParser.kOnMessageComplete] = () => undefined;
  // (versionMajor, versionMinor, headers, method, url, ...)
  parser[HTTPParser.kOnHeadersComplete] = (...head: unknown[]) => {
    onHead(head[4] as string);
    return 0;
  };
  return parser;
}
