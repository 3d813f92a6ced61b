// Capacities fixed at startup: shared-memory stat slabs are sized from them, and the
// config validator rejects configs that exceed them.

/** Listeners per config (each gets a stats slot, kept by name across reloads). */
export const MAX_LISTENERS = 64;
/** Clusters per config (each gets a stats slot, kept by name across reloads). */
export const MAX_CLUSTERS = 256;
