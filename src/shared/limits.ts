// Capacities fixed at startup: shared-memory stat slabs are sized from them, and the
// config validator rejects configs that exceed them.

/** Listeners per config (each gets a stats slot, kept by name across reloads). */
export const MAX_LISTENERS = 64;
/** Clusters per config (each gets a stats slot, kept by name across reloads). */
export const MAX_CLUSTERS = 256;
/** Endpoints over all clusters (each gets a shared-state slot of 32 bytes, kept by name:
 *  2 MiB of shared memory for all of them). */
export const MAX_ENDPOINTS = 65_536;
/** Rate limits without a key, over all listeners and routes (one token bucket each). */
export const MAX_BUCKETS = 1024;
/** Entries of the shared per-key rate-limit table (6 cells × 4 bytes each: 1.5 MiB). */
export const KEYED_BUCKET_ENTRIES = 65536;
