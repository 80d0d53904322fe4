/** Test certificates: a CA of the test's own and leaves it signs (names, validity chosen by the test). */
import { webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 86_400_000;

export interface TestCa {
  pem: string;
  issue: (o: {
    names: string[];
    ips?: string[];
    notBefore?: Date;
    notAfter?: Date;
    cn?: string;
  }) => Promise<{ cert: string; key: string }>;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY')}\n`;
}

const serial = (): string =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');

export async function testCa(name = 'Glue test CA'): Promise<TestCa> {
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      keys: caKeys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    },
    webcrypto,
  );
  return {
    pem: `${ca.toString('pem')}\n`,
    issue: async ({ names, ips = [], notBefore, notAfter, cn }) => {
      const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
      const leaf = await x509.X509CertificateGenerator.create(
        {
          serialNumber: serial(),
          subject: `CN=${cn ?? names[0] ?? 'nobody'}`,
          issuer: ca.subject,
          notBefore: notBefore ?? new Date(Date.now() - DAY),
          notAfter: notAfter ?? new Date(Date.now() + 10 * DAY),
          publicKey: keys.publicKey,
          signingKey: caKeys.privateKey,
          signingAlgorithm: ALG,
          extensions:
            names.length + ips.length > 0
              ? [
                  new x509.SubjectAlternativeNameExtension([
                    ...names.map((value) => ({ type: 'dns' as const, value })),
                    ...ips.map((value) => ({ type: 'ip' as const, value })),
                  ]),
                ]
              : [],
        },
        webcrypto,
      );
      return { cert: `${leaf.toString('pem')}\n`, key: await keyPem(keys) };
    },
  };
}
