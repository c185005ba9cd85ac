namespace CircuitBreaker.Http;

/// <summary>
/// The circuits of one client by host: an open-addressing hash table (linear probing) whose slots hold each circuit
/// with its hash. Lookups take no lock; every change is made under the owner's lock.
/// </summary>
/// <remarks>
/// <para>
/// Why not <see cref="System.Collections.Concurrent.ConcurrentDictionary{TKey, TValue}"/> or a chained table: with
/// many hosts every object a lookup visits is a cache miss, and usually a TLB miss too. A dictionary's chains are
/// nodes of its own, one more object per lookup; a chain through the circuits themselves still visits the circuits
/// ahead of the one sought (a quarter to a half of one per lookup at a load of one half to one), and each of those
/// visits cost as much as the rest of the lookup. Here a lookup compares hashes in adjacent slots, mostly within one
/// cache line, and reads only the circuit whose hash matches. Issue 6 asks that a request among 100,000 hosts cost at
/// most 1.5 times the single-host one; moving from the chained table took that quotient from about 1.58 to 1.49
/// (medians of paired runs, docs/benchmarks.md).
/// </para>
/// <para>
/// Readers never loop forever, and never miss a circuit that was in the table before they started: a slot is written
/// once (its hash before its circuit, whose volatile write publishes both), a removal empties the slot but marks it so
/// that probes go on past it, and a table's slots are never reused. When live and removed slots fill three quarters of
/// the table, the circuits move to a new one, published whole, and the old one is never written again. A reader may
/// miss a circuit added meanwhile; callers then take the owner's lock and look again (<see cref="ClientCircuits"/>
/// does, before it would create one).
/// </para>
/// </remarks>
internal sealed class CircuitTable
{
    private const int InitialSlots = 16;

    private Slot[] _slots = new Slot[InitialSlots];
    private int _used; // slots holding a circuit or marked removed: what probes walk through

    /// <summary>The number of circuits; written under the owner's lock.</summary>
    public int Count { get; private set; }

    /// <summary>Finds the circuit of <paramref name="key"/>, without a lock; may miss one that a concurrent change is adding or moving.</summary>
    public CircuitEntry? Find(in HostKey key)
    {
        var hash = key.GetHashCode();
        var slots = Volatile.Read(ref _slots);
        var mask = slots.Length - 1;
        for (var i = hash & mask; ; i = (i + 1) & mask)
        {
            ref var slot = ref slots[i];
            var entry = Volatile.Read(ref slot.Entry);
            if (entry is null)
            {
                if (!slot.Removed)
                {
                    return null; // never used: the end of the probe
                }
            }
            else if (slot.Hash == hash && entry.Host.Equals(key))
            {
                return entry;
            }
        }
    }

    /// <summary>Adds a circuit whose host is not in the table. Called under the owner's lock.</summary>
    public void Add(CircuitEntry entry)
    {
        if ((_used + 1) * 4 > _slots.Length * 3)
        {
            // Twice the size when live circuits would fill half of it; otherwise the same size, rid of removed slots.
            Rehash((Count + 1) * 2 > _slots.Length ? _slots.Length * 2 : _slots.Length);
        }

        Place(_slots, entry);
        _used++;
        Count++;
    }

    /// <summary>Removes a circuit. Called under the owner's lock.</summary>
    public bool Remove(CircuitEntry entry)
    {
        var slots = _slots;
        var mask = slots.Length - 1;
        for (var i = entry.Hash & mask; ; i = (i + 1) & mask)
        {
            ref var slot = ref slots[i];
            if (ReferenceEquals(slot.Entry, entry))
            {
                // Marked before it is emptied, so a reader that sees it empty also sees that probes go on past it.
                slot.Removed = true;
                Volatile.Write(ref slot.Entry, null);
                Count--;
                return true;
            }

            if (slot.Entry is null && !slot.Removed)
            {
                return false;
            }
        }
    }

    /// <summary>Every circuit, copied under the owner's lock.</summary>
    public CircuitEntry[] ToArray()
    {
        var all = new CircuitEntry[Count];
        var i = 0;
        foreach (var slot in _slots)
        {
            if (slot.Entry is { } entry)
            {
                all[i++] = entry;
            }
        }

        return all;
    }

    // The hash is written before the circuit, whose volatile write publishes both.
    private static void Place(Slot[] slots, CircuitEntry entry)
    {
        var mask = slots.Length - 1;
        var i = entry.Hash & mask;
        while (slots[i].Entry is not null || slots[i].Removed)
        {
            i = (i + 1) & mask;
        }

        slots[i].Hash = entry.Hash;
        Volatile.Write(ref slots[i].Entry, entry);
    }

    private void Rehash(int size)
    {
        var rehashed = new Slot[size];
        foreach (var slot in _slots)
        {
            if (slot.Entry is { } entry)
            {
                Place(rehashed, entry);
            }
        }

        _used = Count;
        Volatile.Write(ref _slots, rehashed); // readers still on the old table find what it held
    }

    private struct Slot
    {
        public CircuitEntry? Entry;
        public int Hash;
        public bool Removed;
    }
}
