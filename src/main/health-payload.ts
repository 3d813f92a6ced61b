// The payloads of health checks (Envoy's HealthCheck.Payload, kept as hex digits in
// Remora's config) and Envoy's match for them: a TCP check's answer, or an HTTP check's
// body, must hold every block in order, each after the previous one, not necessarily next
// to it (protocols put varying data such as times between them).

/** Hex digits (validated by the schema) → their bytes. */
export function payloadBytes(hex: readonly string[]): Buffer[] {
  return hex.map((h) => Buffer.from(h, 'hex'));
}

/** Whether `data` holds every block of `blocks`, in order, each after the last. */
export function containsInOrder(data: Buffer, blocks: readonly Buffer[]): boolean {
  let from = 0;
  for (const b of blocks) {
    const at = data.indexOf(b, from);
    if (at < 0) return false;
    from = at + b.length;
  }
  return true;
}
