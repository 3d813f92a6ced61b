// The values the tracing settings accept (protocols, samplers, propagators), apart from
// the schema that checks them: the workers resolve tracing settings with these and so
// do not load the schema library.

export const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export const PROPAGATORS = ['tracecontext', 'b3', 'b3multi'] as const;
