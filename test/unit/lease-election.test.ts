import assert from 'node:assert/strict';
import type { V1Lease } from '@kubernetes/client-node';
import type { LeaderState } from '../../src/leadership/leadership';
import { type LeaseClient, LeaseElection } from '../../src/leadership/lease';
import { createLogger } from '../../src/log';
import type { LeaderRecord, LeadershipRecords } from '../../src/store/leadership';
import { waitFor } from '../helpers/wait';

/** An in-process Lease API: one Lease, optimistic updates on its resourceVersion, as the API server does. */
class FakeLeases implements LeaseClient {
  lease?: V1Lease;
  private version = 0;

  async read(): Promise<V1Lease | undefined> {
    return this.lease && structuredClone(this.lease);
  }

  async create(lease: V1Lease): Promise<V1Lease> {
    if (this.lease) throw Object.assign(new Error('AlreadyExists'), { code: 409 });
    return this.store(lease);
  }

  async replace(lease: V1Lease): Promise<V1Lease> {
    if (lease.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw Object.assign(new Error('Conflict'), { code: 409 });
    return this.store(lease);
  }

  private store(lease: V1Lease): V1Lease {
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(++this.version) } };
    return structuredClone(this.lease);
  }
}

/** The store's epochs, in memory. */
function fakeRecords(): LeadershipRecords {
  let epoch = 0;
  const records = {
    async takeOver(name: string, holder: string): Promise<LeaderRecord> {
      return { name, holder, epoch: ++epoch, acquiredAt: new Date().toISOString() };
    },
  };
  return records as unknown as LeadershipRecords;
}

const logger = createLogger('silent');
const timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 };

describe('LeaseElection (the client-go algorithm, against an in-process Lease API)', () => {
  it('creates the Lease when there is none, and renews it while held', async () => {
    const leases = new FakeLeases();
    let now = 1_000_000;
    const a = new LeaseElection({ identity: 'a', client: leases, records: fakeRecords(), logger, timing, now: () => now });
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(leases.lease?.spec?.holderIdentity, 'a');
    assert.equal(leases.lease?.spec?.leaseTransitions, 0);
    assert.equal(leases.lease?.spec?.leaseDurationSeconds, 15);
    const acquired = leases.lease?.spec?.acquireTime?.toISOString();
    now += 2000;
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(leases.lease?.spec?.acquireTime?.toISOString(), acquired);
    assert.equal(leases.lease?.spec?.renewTime?.toISOString(), new Date(now).toISOString());
    assert.equal(leases.lease?.spec?.leaseTransitions, 0);
  });

  it('takes a Lease over only a lease duration after it last changed, as observed on its own clock', async () => {
    const leases = new FakeLeases();
    let now = 1_000_000;
    const a = new LeaseElection({ identity: 'a', client: leases, records: fakeRecords(), logger, timing, now: () => now });
    // b's clock runs an hour behind: the timestamps a writes must not count, only when b saw them change.
    const b = new LeaseElection({ identity: 'b', client: leases, records: fakeRecords(), logger, timing, now: () => now - 3_600_000 });
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(await b.tryAcquireOrRenew(), false);
    now += 10_000;
    assert.equal(await a.tryAcquireOrRenew(), true, 'a renews');
    assert.equal(await b.tryAcquireOrRenew(), false, 'b sees the renewal now');
    now += 10_000;
    assert.equal(await b.tryAcquireOrRenew(), false, 'renewed 10 s ago as b saw it');
    // a stops renewing: b waits a lease duration from when it last saw a change.
    now += 4_999;
    assert.equal(await b.tryAcquireOrRenew(), false);
    now += 1;
    assert.equal(await b.tryAcquireOrRenew(), true);
    assert.equal(leases.lease?.spec?.holderIdentity, 'b');
    assert.equal(leases.lease?.spec?.leaseTransitions, 1);
    assert.equal(leases.lease?.spec?.acquireTime?.toISOString(), new Date(now - 3_600_000).toISOString());
    // a is deposed: it cannot renew.
    assert.equal(await a.tryAcquireOrRenew(), false);
  });

  it('loses a race on the resourceVersion instead of both replicas winning', async () => {
    const leases = new FakeLeases();
    let now = 1_000_000;
    const old = new LeaseElection({ identity: 'old', client: leases, records: fakeRecords(), logger, timing, now: () => now });
    assert.equal(await old.tryAcquireOrRenew(), true);
    const a = new LeaseElection({ identity: 'a', client: leases, records: fakeRecords(), logger, timing, now: () => now });
    const b = new LeaseElection({ identity: 'b', client: leases, records: fakeRecords(), logger, timing, now: () => now });
    assert.equal(await a.tryAcquireOrRenew(), false);
    assert.equal(await b.tryAcquireOrRenew(), false);
    now += 15_000;
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]);
    assert.deepEqual(results.filter(Boolean), [true]);
    assert.equal(leases.lease?.spec?.holderIdentity, results[0] ? 'a' : 'b');
  });

  it('leads while it renews, and lets the Lease go on shutdown so a follower takes over at its next try', async () => {
    const leases = new FakeLeases();
    const short = { leaseDurationMs: 3000, renewDeadlineMs: 200, retryPeriodMs: 20 };
    const a = new LeaseElection({ identity: 'a', client: leases, records: fakeRecords(), logger, timing: short });
    const b = new LeaseElection({ identity: 'b', client: leases, records: fakeRecords(), logger, timing: short });
    const seen: LeaderState[] = [];
    a.on('change', (state) => seen.push(state));
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runningA = a.start(stopA.signal);
    await waitFor('a to lead', () => a.state().leading);
    const runningB = b.start(stopB.signal);
    await waitFor('b to have tried', () => !b.state().leading && (b.state() as { reason: string }).reason.includes('another replica'));
    stopA.abort();
    await runningA;
    assert.deepEqual(
      seen.map((s) => s.leading),
      [true, false],
    );
    // Released: b need not wait out the 3 s lease duration.
    await waitFor('b to lead', () => b.state().leading, { timeoutMs: 1000 });
    stopB.abort();
    await runningB;
  });

  it('refuses timings where the renew deadline is not shorter than the lease duration', () => {
    assert.throws(
      () =>
        new LeaseElection({
          identity: 'a',
          client: new FakeLeases(),
          records: fakeRecords(),
          logger,
          timing: { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 },
        }),
      { name: 'RangeError', message: 'lease duration (10000 ms) must be longer than the renew deadline (10000 ms)' },
    );
  });
});
