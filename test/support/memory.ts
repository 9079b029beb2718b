import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/**
 * Bytes the process retains: `heapUsed + arrayBuffers` after two full collections. Typed arrays live in array
 * buffers, outside `heapUsed`, so both count. Works without `node --expose-gc` (the flag is set at run time).
 */
export function retainedBytes(): number {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
