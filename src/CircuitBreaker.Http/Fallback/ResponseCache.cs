using Microsoft.Extensions.Caching.Memory;

namespace CircuitBreaker.Http;

/// <summary>
/// The last good response per request of one client, bounded in count and bytes by a size-limited
/// <see cref="MemoryCache"/>. Each entry is charged at least <c>MaxTotalBytes / MaxEntries</c>, rounded down, and the
/// size limit is <c>MaxEntries</c> such charges (never more than <c>MaxTotalBytes</c>), so the one size limit enforces
/// both bounds; under pressure the cache compacts least recently used entries first.
/// </summary>
internal sealed class ResponseCache : IDisposable
{
    private readonly MemoryCache _cache;
    private readonly long _minimumCharge;
    private readonly long _sizeLimit;

    public ResponseCache(int maxEntries, long maxTotalBytes, TimeProvider? timeProvider = null)
    {
        MaxEntries = maxEntries;
        MaxTotalBytes = maxTotalBytes;
        // The limit is exactly MaxEntries minimum charges, so that exactly MaxEntries small entries fit when MaxTotalBytes
        // is not a multiple of MaxEntries. Against MaxTotalBytes itself, a charge rounded down lets MaxEntries + 1 fit
        // (the default 64 MiB over 10,000 entries, 10,001), and one rounded up only MaxEntries - 1 (9,999). What the
        // limit gives up of MaxTotalBytes is less than MaxEntries bytes. No overflow: the product is at most MaxTotalBytes,
        // or MaxEntries when MaxTotalBytes is smaller, which the minimum then bounds.
        _minimumCharge = Math.Max(1, maxTotalBytes / maxEntries);
        _sizeLimit = Math.Min(maxTotalBytes, _minimumCharge * maxEntries);
        Clock = new CacheClock(timeProvider ?? TimeProvider.System);
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = _sizeLimit, CompactionPercentage = 0.1, TrackStatistics = true, Clock = Clock });
    }

    /// <summary>The clock of the entries' ages, and of the cache's own bookkeeping.</summary>
    public CacheClock Clock { get; }

    public int MaxEntries { get; }

    public long MaxTotalBytes { get; }

    /// <summary>Gets the number of entries, for tests and diagnostics.</summary>
    public int Count => _cache.Count;

    /// <summary>Gets the sum of what the entries are charged, which never exceeds <see cref="MaxTotalBytes"/>.</summary>
    public long Charged => _cache.GetCurrentStatistics()?.CurrentEstimatedSize ?? 0;

    public void Store(string key, CachedResponse entry)
    {
        var charge = ChargeOf(entry);
        if (charge > _sizeLimit)
        {
            // It can never fit (MaxEntryBytes is not bounded by MaxTotalBytes): making room for it would empty the cache,
            // and MemoryCache would then reject it. Dropped like a body over MaxEntryBytes, the older entry left in place.
            return;
        }

        // A full MemoryCache rejects the new entry (and drops an older one under the same key) and only then
        // compacts in the background, which would lose exactly the newest good response. Make room first.
        // Compared as the room left, never as a sum: with MaxTotalBytes near long.MaxValue (bounded by MaxEntries alone) a
        // full cache plus one more would overflow into room that is not there, and MemoryCache would reject the entry.
        _cache.Remove(key);
        for (var attempt = 0; attempt < 10 && charge > _sizeLimit - Charged && _cache.Count > 0; attempt++)
        {
            _cache.Compact(Math.Max(0.1, 1.5 / _cache.Count)); // least recently used first, at least one entry
        }

        using var cacheEntry = _cache.CreateEntry(key);
        cacheEntry.Value = entry;
        cacheEntry.Size = charge;
    }

    /// <summary>
    /// The entry for <paramref name="request"/> no older than <paramref name="maxAge"/> at the reading <paramref name="now"/>
    /// of <see cref="Clock"/>, nor than its own headers allow (<see cref="CachedResponse.MaxReplayAge"/>).
    /// </summary>
    public CachedResponse? Find(HttpRequestMessage request, TimeSpan maxAge, long now, bool knownWithoutCredentials = false) =>
        _cache.TryGetValue(ResponseCacheKey.For(request, knownWithoutCredentials), out CachedResponse? entry)
        && entry is not null
        && AgeOf(entry, now) is var age
        && age <= maxAge
        && age < entry.MaxReplayAge
        && entry.VaryMatches(request)
            ? entry
            : null;

    /// <summary>
    /// The age of <paramref name="entry"/> at the reading <paramref name="now"/> of <see cref="Clock"/>: the time it
    /// has been here plus the age it already had when it was received (RFC 9111 §4.2.3).
    /// </summary>
    public TimeSpan AgeOf(CachedResponse entry, long now) => Clock.Between(entry.StoredAt, now) + entry.ReceivedAge;

    /// <summary>
    /// Stores the entries of <paramref name="other"/>, the cache this one replaces on a reload that changed the bounds:
    /// the responses it kept are the ones a circuit open right now can no longer fetch. When they no longer all fit,
    /// the newest stay.
    /// </summary>
    public void TakeEntriesOf(ResponseCache other)
    {
        var entries = new List<(string Key, CachedResponse Entry)>(other.Count);
        foreach (var key in other._cache.Keys)
        {
            if (key is string k && other._cache.TryGetValue(k, out CachedResponse? entry) && entry is not null)
            {
                entries.Add((k, entry));
            }
        }

        // Chosen newest first, up to the bounds, before anything is stored: left to Store, the room would be made by
        // compacting the least recently used, and entries stored within the same tick of the clock all look equally
        // recent to MemoryCache, so which of them survived would be arbitrary.
        var charged = 0L;
        var kept = new List<(string Key, CachedResponse Entry)>(Math.Min(entries.Count, MaxEntries));
        foreach (var e in entries.OrderByDescending(e => e.Entry.StoredAt))
        {
            var charge = ChargeOf(e.Entry);
            if (charge <= _sizeLimit - charged) // not a sum, which can overflow (see Store)
            {
                charged += charge;
                kept.Add(e);
            }
        }

        // Stored oldest first, each a tick of the cache's own clock after the one before: MemoryCache compacts the least
        // recently used first, so the next response stored into a full cache must push out the oldest of these.
        for (var i = kept.Count - 1; i >= 0; i--)
        {
            Store(kept[i].Key, kept[i].Entry);
            Clock.Tick();
        }
    }

    public void Dispose() => _cache.Dispose();

    /// <summary>What an entry counts against the size limit: its size, and at least the share of one of MaxEntries.</summary>
    private long ChargeOf(CachedResponse entry) => Math.Max(entry.Size, _minimumCharge);
}
