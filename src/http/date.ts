// The `date` header value (RFC 9110 §6.6.1, IMF-fixdate), made at most once a second and
// shared by every response of the thread.

let cachedSecond = -1;
let cached = '';

export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cached = new Date(second * 1000).toUTCString();
  }
  return cached;
}
