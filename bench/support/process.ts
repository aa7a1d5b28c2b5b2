/** What the benches measure of a child process (Linux /proc) and how they wait for one to start. */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime + stime of a process, in microseconds (clock ticks are 100 Hz on Linux). */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuSplitMicros(pid);
  return user + system;
}

/** utime and stime of a process apart, in microseconds: system is the kernel's share (syscalls, TCP). */
export function cpuSplitMicros(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
}

/** Resolves once the child's stdout has printed `text`; rejects if it exits first. Keeps stdout drained. */
export async function waitFor(child: ChildProcess, text: string): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b) => {
      out += b;
      if (out.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
}

/**
 * Pins a process and all its threads (threads it starts later inherit it) to the given CPUs
 * (`taskset`, util-linux). The benches use it to give a load generator a core of its own, as a
 * generator on another machine would have.
 */
export function pinToCpus(pid: number, cpus: number[]): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(pid)], { stdio: 'ignore' });
}
