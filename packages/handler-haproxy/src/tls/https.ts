/**
 * HTTPS for one router: the certificates HAProxy serves (certificates.ts), fed by the operator's
 * certs-dir (certs-dir.ts) and ACME (acme.ts), and the one line per HTTPS host that no certificate
 * names yet (it is served with the default certificate, never silently on HTTP only).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@glue/core';
import type { TlsSite } from '../model.js';
import type { HttpsOptions } from '../options.js';
import type { RenderSettings } from '../template.js';
import { Certificates, writeAtomic } from './certificates.js';
import { AcmeIssuer } from './acme.js';
import { CertsDir } from './certs-dir.js';

export interface HttpsOptionsIn {
  options: HttpsOptions;
  runtimeSocket: string;
  logger: Logger;
  handlerName: string;
  runtimeReady: () => boolean;
  reloadSoon: () => void;
}

/** The files of the HTTPS frontend, as the template names them. */
export type HttpsFiles = NonNullable<RenderSettings['https']>;

export class Https {
  readonly certificates: Certificates;
  readonly files: HttpsFiles;
  private readonly certsDir: CertsDir | undefined;
  private readonly acme: AcmeIssuer | undefined;
  /** The last verdict logged per HTTPS host (which certificate, or none). */
  private readonly verdicts = new Map<string, string>();
  private sites: readonly TlsSite[] = [];

  constructor(private readonly o: HttpsOptionsIn) {
    const h = o.options;
    this.certificates = new Certificates({
      tlsDir: h.tlsDir,
      defaultCert: h.defaultCert,
      runtimeSocket: o.runtimeSocket,
      runtimeReady: o.runtimeReady,
      reloadSoon: o.reloadSoon,
      logger: o.logger,
      handlerName: o.handlerName,
    });
    this.files = {
      bind: h.bind,
      defaultCert: this.certificates.defaultPem,
      crtList: this.certificates.crtList,
      tlsMap: join(h.tlsDir, 'tls.map'),
      acmeMap: h.acme ? join(h.tlsDir, 'acme.map') : '',
      hstsMaxAge: h.hstsMaxAge,
    };
    if (h.certsDir)
      this.certsDir = new CertsDir({
        dir: h.certsDir,
        logger: o.logger,
        onChange: (certs) => void this.certificates.set('certs-dir', certs).then(() => this.review()),
      });
    if (h.acme)
      this.acme = new AcmeIssuer({
        acme: h.acme,
        challengeMap: this.files.acmeMap,
        runtimeSocket: o.runtimeSocket,
        runtimeReady: o.runtimeReady,
        onCerts: (certs) => void this.certificates.set('acme', certs).then(() => this.review()),
        logger: o.logger,
      });
  }

  /** Before HAProxy first starts: every file the HTTPS frontend names exists and holds what is known now. */
  async prepare(): Promise<void> {
    await mkdir(this.o.options.tlsDir, { recursive: true, mode: 0o700 });
    if (this.certsDir) this.certificates.stage('certs-dir', this.certsDir.scan());
    if (this.acme) this.certificates.stage('acme', await this.acme.load());
    await this.certificates.prepare();
    // Challenges of an earlier run are over: their answers go.
    if (this.files.acmeMap) await writeAtomic(this.files.acmeMap, '', 0o644);
  }

  start(): void {
    this.certsDir?.start();
    this.acme?.start();
  }

  /**
   * The HTTPS hosts of the current model (every apply): each is logged once with the certificate that
   * answers it; ACME orders those that certs-dir does not cover (the operator's files win).
   */
  observe(sites: readonly TlsSite[]): void {
    this.sites = sites;
    this.review();
    this.acme?.want(sites.map((s) => s.host).filter((h) => !this.certificates.covered('certs-dir', h)));
  }

  /** What the metrics show: certificates per source, the earliest expiry, hosts on the default certificate, ACME orders. */
  stats(): {
    bySource: Map<string, number>;
    earliestNotAfter: Date | undefined;
    withoutCertificate: number;
    acme: { issued: number; failed: number } | undefined;
  } {
    const withoutCertificate = [...this.verdicts.values()].filter((v) => v === '').length;
    return { ...this.certificates.summary(), withoutCertificate, acme: this.acme?.counts };
  }

  async stop(): Promise<void> {
    this.certsDir?.stop();
    await this.acme?.stop();
    await this.certificates.stop();
  }

  private review(): void {
    const seen = new Set<string>();
    for (const site of this.sites) {
      seen.add(site.host);
      const cert = this.certificates.certFor(site.host);
      const verdict = cert ? cert.id : '';
      if (this.verdicts.get(site.host) === verdict) continue;
      this.verdicts.set(site.host, verdict);
      if (cert)
        this.o.logger.info(
          { host: site.host, cert: cert.id },
          `HTTPS host ${site.host} is served with certificate ${cert.id} (${cert.origin})`,
        );
      else
        this.o.logger.warn(
          { host: site.host },
          `HTTPS host ${site.host} has no certificate yet: it is served with the default certificate ${this.files.defaultCert} (${this.o.options.acme ? 'ACME does not cover it or has not issued yet' : 'add one to certs-dir'})`,
        );
    }
    for (const host of this.verdicts.keys()) if (!seen.has(host)) this.verdicts.delete(host);
  }
}
