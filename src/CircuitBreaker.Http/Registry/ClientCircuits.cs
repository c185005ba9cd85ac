using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// The circuits of one named client, one per downstream authority, bounded by <see cref="CircuitBreakerOptions.MaxCircuits"/>.
/// </summary>
internal sealed class ClientCircuits
{
    private readonly CircuitTable _circuits = new();
    private readonly Lock _createLock = new();
    private readonly CircuitBreakerRegistry _registry;
    private volatile CircuitBreakerOptions? _options;
    private volatile OptionsValidationException? _invalid;
    private CircuitRules? _sharedRules;

    // Counts circuit creations. A circuit in use records the generation current at its last call, and eviction
    // (which only happens when a circuit is created) takes the lowest first: least recently used, measured in the
    // only events that matter to it, and with no clock read on the request path.
    private long _generation;

    /// <param name="clientName">The client's name.</param>
    /// <param name="options">Its validated options, or <see langword="null"/> when they are invalid.</param>
    /// <param name="invalid">Why they are invalid: thrown to callers until a reload brings valid options.</param>
    /// <param name="registry">The owner.</param>
    public ClientCircuits(string clientName, CircuitBreakerOptions? options, OptionsValidationException? invalid, CircuitBreakerRegistry registry)
    {
        ClientName = clientName;
        _options = options;
        _invalid = invalid;
        _registry = registry;
        Cache = CacheFor(options, current: null, registry.TimeProvider);
    }

    public CircuitBreakerRegistry Registry => _registry;

    /// <summary>The fallback cache shared by the client's circuits, while any of them caches.</summary>
    public ResponseCache? Cache { get; private set; }

    public string ClientName { get; }

    public int Count => _circuits.Count;

    public IEnumerable<CircuitEntry> Entries
    {
        get
        {
            lock (_createLock)
            {
                return _circuits.ToArray();
            }
        }
    }

    /// <summary>The circuit of a call about to be made to <paramref name="uri"/>, noted as used.</summary>
    public CircuitEntry GetOrCreate(Uri uri) => GetOrCreate(uri, uri.Scheme);

    /// <summary>The circuit of a call about to be made to <paramref name="uri"/>, whose scheme the caller has read already.</summary>
    public CircuitEntry GetOrCreate(Uri uri, string scheme)
    {
        var entry = GetOrCreate(new HostKey(uri, scheme));
        entry.MarkUsed(Volatile.Read(ref _generation));
        return entry;
    }

    public bool TryGet(HostKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CircuitEntry? entry)
    {
        entry = _circuits.Find(key) ?? FindLocked(key);
        return entry is not null;
    }

    public CircuitEntry GetOrCreate(HostKey key) => _circuits.Find(key) ?? Create(key);

    /// <summary>Applies reloaded options to every circuit, keeping their state.</summary>
    public void Apply(CircuitBreakerOptions options)
    {
        lock (_createLock)
        {
            _options = options;
            _invalid = null;
            _sharedRules = null;
            Cache = CacheFor(options, Cache, _registry.TimeProvider);
            foreach (var entry in _circuits.ToArray())
            {
                entry.Apply(RulesFor(options, entry.Host));
            }
        }
    }

    /// <summary>
    /// Lets the cache go, as the registry is disposed. An undisposed <see cref="Microsoft.Extensions.Caching.Memory.MemoryCache"/>
    /// that tracks statistics is held by the per-thread statistics of every thread that looked something up in it, and would
    /// outlive the registry with everything it holds. Calls still under way find no cache, as if none were configured.
    /// </summary>
    public void ReleaseCache()
    {
        lock (_createLock)
        {
            Cache?.Dispose();
            Cache = null;
        }
    }

    /// <summary>
    /// Notes a rejected reload. A client with valid options keeps them; one that never had any reports the
    /// newest reason to its callers.
    /// </summary>
    public void RejectReload(OptionsValidationException invalid)
    {
        lock (_createLock)
        {
            if (_options is null)
            {
                _invalid = invalid;
            }
        }
    }

    private CircuitEntry? FindLocked(HostKey key)
    {
        lock (_createLock)
        {
            return _circuits.Find(key);
        }
    }

    private CircuitEntry Create(HostKey key)
    {
        List<(CircuitEntry Entry, CircuitState State)>? evicted = null;
        CircuitEntry entry;

        // Creation is rare (first call to a host) and must not race eviction, so it takes a lock; lookups never do.
        lock (_createLock)
        {
            // Again under the lock: a lookup that raced a change to the table may have missed it.
            if (_circuits.Find(key) is { } existing)
            {
                return existing;
            }

            if (_options is not { } options)
            {
                // A fresh exception each time: rethrowing one instance from many calls would garble its stack trace.
                var invalid = _invalid!;
                throw new OptionsValidationException(invalid.OptionsName, invalid.OptionsType, invalid.Failures);
            }

            if (_circuits.Count >= options.MaxCircuits)
            {
                evicted = Evict(options.MaxCircuits);
            }

            var generation = Interlocked.Increment(ref _generation);
            entry = new CircuitEntry(this, key, RulesFor(options, key), generation, _registry.TimeProvider);
            _circuits.Add(entry);
        }

        if (evicted is not null)
        {
            _registry.OnEvicted(ClientName, evicted); // logged outside the lock, which every new host's first call takes
        }

        return entry;
    }

    /// <summary>
    /// The rules for a host: those shared by every host without an override of its own, or, for a host with
    /// one, its own. Called under the creation lock.
    /// </summary>
    private CircuitRules RulesFor(CircuitBreakerOptions options, HostKey key)
    {
        var hostOptions = options.ForHost(key.Host);
        if (!ReferenceEquals(hostOptions, options))
        {
            return CircuitRules.From(hostOptions);
        }

        if (_sharedRules is not { } shared || !ReferenceEquals(shared.Options, options))
        {
            _sharedRules = shared = CircuitRules.From(options);
        }

        return shared;
    }

    /// <summary>
    /// The cache the options call for: none when no circuit caches, the current one when its bounds still
    /// hold (a reload keeps what was cached), otherwise a new one, which takes over what the current one holds.
    /// </summary>
    private static ResponseCache? CacheFor(CircuitBreakerOptions? options, ResponseCache? current, TimeProvider timeProvider)
    {
        var cache = options?.Fallback.Cache;
        var anyCaches = cache is not null
            && (cache.Enabled || options!.Hosts.Values.Any(h => h?.Fallback.Cache.Enabled == true));
        if (!anyCaches)
        {
            current?.Dispose();
            return null;
        }

        if (current is not null && current.MaxEntries == cache!.MaxEntries && current.MaxTotalBytes == cache.MaxTotalBytes)
        {
            return current;
        }

        var resized = new ResponseCache(cache!.MaxEntries, cache.MaxTotalBytes, timeProvider);
        if (current is not null)
        {
            resized.TakeEntriesOf(current);
            current.Dispose();
        }

        return resized;
    }

    /// <summary>Evicts circuits to make room for one more, and returns them with the state they were in. Called under the creation lock.</summary>
    private List<(CircuitEntry Entry, CircuitState State)> Evict(int maxCircuits)
    {
        // Evicting a batch keeps the scan's cost spread over many creations when hosts churn. Beyond the batch, whatever
        // exceeds the limit: a reload may have lowered it below the circuits the client already has.
        // The batch is taken from idle closed circuits only: an open one keeps calls off a broken host, and goes only
        // when there is no other room for the new circuit. So does a closed one called since the last creation: among
        // open circuits it would be the only closed one, the next new host's first victim, and new hosts called in turn
        // would evict each other's circuits at every call, which then never count enough failures to open.
        var generation = Volatile.Read(ref _generation);
        var needed = _circuits.Count - maxCircuits + 1;
        var toEvict = Math.Max(1, maxCircuits / 10) + (_circuits.Count - maxCircuits);
        var victims = _circuits.ToArray()
            .Select(e => (Entry: e, State: e.Machine.State))
            .Where(c => c.State != CircuitState.Isolated)
            .Select(c => (c.Entry, c.State, Idle: c.State == CircuitState.Closed && c.Entry.LastUsed != generation))
            .OrderBy(c => c.Idle ? 0 : 1)
            .ThenBy(c => c.Entry.LastUsed)
            .Where((c, i) => c.Idle || i < needed) // idle closed ones come first
            .Select(c => (c.Entry, c.State))
            .Take(toEvict)
            .ToList();

        foreach (var (victim, _) in victims)
        {
            if (_circuits.Remove(victim))
            {
                victim.Machine.Dispose();
            }
        }

        return victims;
    }
}
