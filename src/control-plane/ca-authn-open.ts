// Builds the mesh CA's CaAuthn (ca-authn.ts) from its options: checks the combination,
// opens the JWKS and bootstrap-token files (a bad file stops the start, with a message
// naming the flag), and logs what the CA will accept. With no authenticator it logs an
// error (the CA refuses every request); with --insecure-allow-any-identity, a warning.

import type { Logger } from '../core/log.js';
import { BootstrapTokenAuthenticator } from './ca-authn-bootstrap.js';
import { JwtAuthenticator } from './ca-authn-jwt.js';
import { SharedTokenAuthenticator } from './ca-authn-shared-token.js';
import { authnOptionsProblem, CaAuthn, DEFAULT_JWT_AUDIENCE, type CaAuthnOptions } from './ca-authn.js';

export function openCaAuthn(opts: CaAuthnOptions, trustDomain: string, log: Logger): CaAuthn {
  const problem = authnOptionsProblem(opts);
  if (problem !== null) throw new Error(problem);
  const insecure = opts.insecureAllowAnyIdentity === true;
  const audience = opts.jwtAudience ?? DEFAULT_JWT_AUDIENCE;
  const jwt = opts.jwksFile !== undefined
    ? new JwtAuthenticator({ jwksFile: opts.jwksFile, issuer: opts.jwtIssuer ?? '', audience, trustDomain, log })
    : undefined;
  const bootstrap = opts.bootstrapTokensFile !== undefined ? new BootstrapTokenAuthenticator(opts.bootstrapTokensFile, trustDomain, log) : undefined;
  const sharedToken = insecure && opts.tokenFile !== undefined ? new SharedTokenAuthenticator(opts.tokenFile, log) : undefined;

  if (jwt !== undefined) {
    log.info({ jwks: opts.jwksFile, issuer: opts.jwtIssuer, audience, kids: jwt.kids() }, 'mesh CA authenticates Kubernetes service-account tokens');
  }
  if (bootstrap !== undefined) {
    log.info({ file: opts.bootstrapTokensFile, lines: bootstrap.size }, 'mesh CA authenticates bootstrap tokens');
  }
  if (insecure) {
    log.warn(
      { shared_token: sharedToken !== undefined },
      sharedToken !== undefined
        ? 'INSECURE mesh CA (--insecure-allow-any-identity): any holder of the shared --ca-token-file token gets a certificate for ANY identity of the trust domain; for demos only'
        : 'INSECURE mesh CA (--insecure-allow-any-identity): any client that reaches the ADS port gets a certificate for ANY identity of the trust domain; for demos only',
    );
  } else if (jwt === undefined && bootstrap === undefined) {
    log.error('mesh CA with no authenticator: EVERY certificate request will be refused (PERMISSION_DENIED). Give --ca-jwks with --ca-jwt-issuer (Kubernetes), --ca-bootstrap-tokens FILE, or, for demos only, --insecure-allow-any-identity');
  }
  return new CaAuthn({ jwt, bootstrap, sharedToken, insecure });
}
