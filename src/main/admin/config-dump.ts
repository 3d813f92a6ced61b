// Admin handlers that show what Remora runs with: GET /config_dump (the effective config,
// its version, bound ports, reloads and rejections, the xDS source) and GET /certs (TLS
// files, their expiry and rotations, the mesh identity).

import type { AdminHandler } from './context.js';

export const configDumpHandler: AdminHandler = (ctx) => {
  const snap = ctx.snapshot();
  const lc = ctx.lifecycle;
  return [
    200,
    {
      version: snap.version,
      bound_ports: snap.boundPorts,
      reloads: lc.reloads,
      last_reload_at: lc.lastReloadAt,
      rejections: lc.rejections,
      last_rejection: lc.lastRejection,
      ...(ctx.source !== null ? ctx.source.describe() : {}),
      config: snap.config,
      // DNS clusters: the endpoints as written are in `config`; what they resolved to here.
      ...(snap.config.clusters.some((c) => c.dns !== undefined) ? { resolved_endpoints: snap.resolved ?? {} } : {}),
    },
  ];
};

export const certsHandler: AdminHandler = (ctx) => {
  const earliest = ctx.certs.earliestExpirySeconds();
  return [
    200,
    {
      earliest_expiry_seconds: earliest,
      rotations: ctx.certs.rotations,
      certificates: ctx.certs.certificates(),
      files: ctx.certs.status(),
      ...(ctx.source?.identity !== undefined ? { mesh_identity: ctx.source.identity() } : {}),
    },
  ];
};
