// The authorization filter: a request whose peer identity the policy refuses gets 403,
// flag RBAC (Envoy's RBAC filter's reply). The reply is one constant object.

import { ResponseFlag } from '../core/flags.js';
import type { CompiledAuthorization } from './authorization.js';
import type { FilterRequest, LocalReply, RequestFilter } from './request-filter.js';

export const AUTHORIZATION_DENIED: LocalReply = Object.freeze({
  status: 403,
  flag: ResponseFlag.AuthorizationDenied,
  body: 'RBAC: access denied',
  headers: null,
});

export class AuthorizationFilter implements RequestFilter {
  constructor(private readonly policy: CompiledAuthorization) {}

  decide(req: FilterRequest): LocalReply | null {
    return this.policy.permits(req.peer === null ? '' : req.peer.id) ? null : AUTHORIZATION_DENIED;
  }
}
