namespace CircuitBreaker.Http;

/// <summary>
/// The circuits of one client by host: a hash table whose chains run through the circuits themselves
/// (<see cref="CircuitEntry.Next"/>). Lookups take no lock; every change is made under the owner's lock.
/// </summary>
/// <remarks>
/// <para>
/// Why not <see cref="System.Collections.Concurrent.ConcurrentDictionary{TKey, TValue}"/>: its chains are nodes of
/// their own, so finding a circuit follows the bucket, then the node, then the circuit. With many hosts each of those
/// is a cache miss, and profiling 100,000 hosts showed the node as the most expensive of them (issue 6 asks that a
/// request cost at most 1.5 times the single-host one). Here the bucket holds the circuit, which holds its key, so a
/// lookup reads the bucket and the circuit.
/// </para>
/// <para>
/// Readers never see a chain in a state that would make them loop or skip past the end of memory they may read:
/// an addition publishes a fully built circuit at the head of its chain, a removal only relinks its predecessor
/// (the removed circuit keeps pointing onward), and growing relinks each circuit once, always to circuits already
/// moved. A reader that raced a change may miss a circuit that is there; callers then take the owner's lock and
/// look again (<see cref="ClientCircuits"/> does, before it would create one).
/// </para>
/// </remarks>
internal sealed class CircuitTable
{
    private const int InitialBuckets = 16;

    private CircuitEntry?[] _buckets = new CircuitEntry?[InitialBuckets];

    /// <summary>The number of circuits; written under the owner's lock.</summary>
    public int Count { get; private set; }

    /// <summary>Finds the circuit of <paramref name="key"/>, without a lock; may miss one that a concurrent change is moving.</summary>
    public CircuitEntry? Find(in HostKey key)
    {
        var hash = key.GetHashCode();
        var buckets = Volatile.Read(ref _buckets);
        for (var entry = Volatile.Read(ref buckets[hash & (buckets.Length - 1)]); entry is not null; entry = entry.Next)
        {
            if (entry.Hash == hash && entry.Host.Equals(key))
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>Adds a circuit whose host is not in the table. Called under the owner's lock.</summary>
    public void Add(CircuitEntry entry)
    {
        if (Count >= _buckets.Length)
        {
            Grow();
        }

        ref var head = ref _buckets[entry.Hash & (_buckets.Length - 1)];
        entry.Next = head;
        Volatile.Write(ref head, entry); // publishes the circuit, built and linked, in one write
        Count++;
    }

    /// <summary>Removes a circuit. Called under the owner's lock.</summary>
    public bool Remove(CircuitEntry entry)
    {
        ref var link = ref _buckets[entry.Hash & (_buckets.Length - 1)];
        while (link is { } current)
        {
            if (ReferenceEquals(current, entry))
            {
                // The removed circuit keeps its Next, so a reader standing on it goes on down the chain.
                Volatile.Write(ref link, entry.Next);
                Count--;
                return true;
            }

            link = ref current.Next;
        }

        return false;
    }

    /// <summary>Every circuit, copied under the owner's lock.</summary>
    public CircuitEntry[] ToArray()
    {
        var all = new CircuitEntry[Count];
        var i = 0;
        foreach (var head in _buckets)
        {
            for (var entry = head; entry is not null; entry = entry.Next)
            {
                all[i++] = entry;
            }
        }

        return all;
    }

    private void Grow()
    {
        var old = _buckets;
        var grown = new CircuitEntry?[old.Length * 2];
        foreach (var head in old)
        {
            var entry = head;
            while (entry is not null)
            {
                // Read before relinking: once moved, the circuit points into the new table.
                var next = entry.Next;
                ref var target = ref grown[entry.Hash & (grown.Length - 1)];
                Volatile.Write(ref entry.Next, target);
                target = entry;
                entry = next;
            }
        }

        Volatile.Write(ref _buckets, grown);
    }
}
