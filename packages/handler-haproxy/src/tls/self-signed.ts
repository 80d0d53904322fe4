/**
 * The default certificate when the operator gives none: self-signed, ECDSA P-256, valid ten years,
 * named after nothing a client could mistake for a real site. Served to a client whose SNI names no
 * certificate Glue has (a host still waiting for ACME, a client without SNI).
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export async function selfSignedPem(commonName = 'glue-default-certificate.invalid'): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
      name: `CN=${commonName}`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 10 * 365 * 86400_000),
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }]),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      ],
    },
    // Node's Web Crypto, the provider @peculiar/x509 also picks by itself on Node 20.
    webcrypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  return `${cert.toString('pem')}\n${key}\n`;
}
