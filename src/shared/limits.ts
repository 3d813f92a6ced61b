// Capacities fixed at startup: shared-memory stat slabs are sized from them, and the
// config validator rejects configs that exceed them.

/** Listeners per config (each gets a stats slot, kept by name across reloads). */
export const MAX_LISTENERS = 64;
/** Clusters per config (each gets a stats slot, kept by name across reloads). Sized for
 *  a mesh sidecar's view of its control plane (5,000 services and more). Each worker's
 *  stats slab reserves a block per cluster slot (under 1 KiB: about 6 MiB per worker at
 *  this cap, mirrored by the main thread's reader) and the shared state 32 bytes per
 *  slot (256 KiB). That memory is allocated zeroed and only the slots a config has used
 *  are ever written (or folded), so pages of unused slots never become resident. */
export const MAX_CLUSTERS = 8192;
/** Endpoints over all clusters (each gets a shared-state slot of 32 bytes, kept by name:
 *  2 MiB of shared memory for all of them). */
export const MAX_ENDPOINTS = 65_536;
/** Rate limits without a key, over all listeners and routes (one token bucket each). */
export const MAX_BUCKETS = 1024;
/** Entries of the shared per-key rate-limit table (6 cells × 4 bytes each: 1.5 MiB). */
export const KEYED_BUCKET_ENTRIES = 65536;
