import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const PRIVATE_KEY_FILE = 'model-signing.key';
export const PUBLIC_KEY_FILE = 'model-signing.pub';

/**
 * Writes a new ed25519 key pair: the private key (PKCS#8 PEM, mode 0600) stays with the
 * field techs, the public key (SPKI PEM) goes to every gateway's model.trustedKeys. An
 * existing key is never overwritten: losing it would orphan every bundle it signed.
 */
export async function generateSigningKeys(outDir: string): Promise<{ privateFile: string; publicFile: string; keyId: string }> {
  const dir = resolve(outDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateFile = join(dir, PRIVATE_KEY_FILE);
  const publicFile = join(dir, PUBLIC_KEY_FILE);
  await writeNew(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  await writeNew(publicFile, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  return { privateFile, publicFile, keyId: keyIdOf(publicKey) };
}

async function writeNew(file: string, text: string, mode: number): Promise<void> {
  let handle;
  try {
    // O_EXCL with the mode at creation: the private key is never readable by others, not even for a moment.
    handle = await open(file, 'wx', mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${file} already exists; not overwriting a signing key (choose another --out, or move it away first)`);
    throw error;
  }
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads an ed25519 private key; refuses one that others can read, as ssh does. */
export async function readPrivateSigningKey(file: string): Promise<KeyObject> {
  let text: string;
  try {
    const info = await stat(file);
    if ((info.mode & 0o077) !== 0) {
      throw new Error(`private key ${file} is readable by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 ${file}`);
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new Error(`cannot read private key ${file} (${code})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (error) {
    throw new Error(`${file} is not a PEM private key (${(error as Error).message}): use the .key file \`ser-edge model keygen\` wrote`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is a ${key.asymmetricKeyType} key; model signatures are ed25519`);
  return key;
}

/** A short, stable name for a public key: the first 16 hex digits of the sha256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}
