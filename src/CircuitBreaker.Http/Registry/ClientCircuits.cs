using System.Collections.Concurrent;

namespace CircuitBreaker.Http;

/// <summary>
/// The circuits of one named client, one per downstream authority, bounded by <see cref="CircuitBreakerOptions.MaxCircuits"/>.
/// </summary>
internal sealed class ClientCircuits
{
    private readonly ConcurrentDictionary<HostKey, CircuitEntry> _circuits = new();
    private readonly Lock _createLock = new();
    private readonly CircuitBreakerRegistry _registry;
    private volatile CircuitBreakerOptions _options;

    public ClientCircuits(string clientName, CircuitBreakerOptions options, CircuitBreakerRegistry registry)
    {
        ClientName = clientName;
        _options = options;
        _registry = registry;
    }

    public string ClientName { get; }

    public int Count => _circuits.Count;

    public IEnumerable<CircuitEntry> Entries => _circuits.Values;

    public CircuitEntry GetOrCreate(Uri uri) => GetOrCreate(new HostKey(uri));

    public bool TryGet(HostKey key, out CircuitEntry? entry) => _circuits.TryGetValue(key, out entry);

    public CircuitEntry GetOrCreate(HostKey key) => _circuits.TryGetValue(key, out var entry) ? entry : Create(key);

    /// <summary>Applies reloaded options to every circuit, keeping their state.</summary>
    public void Apply(CircuitBreakerOptions options)
    {
        lock (_createLock)
        {
            _options = options;
            foreach (var entry in _circuits.Values)
            {
                entry.Apply(options.ForHost(entry.Host.Host));
            }
        }
    }

    private CircuitEntry Create(HostKey key)
    {
        // Creation is rare (first call to a host) and must not race eviction, so it takes a lock; lookups never do.
        lock (_createLock)
        {
            if (_circuits.TryGetValue(key, out var existing))
            {
                return existing;
            }

            var options = _options;
            if (_circuits.Count >= options.MaxCircuits)
            {
                Evict(options.MaxCircuits);
            }

            var hostOptions = options.ForHost(key.Host);
            var circuitKey = new CircuitKey(ClientName, key.Authority);
            var entry = new CircuitEntry(
                circuitKey,
                key,
                new CircuitStateMachine(BreakerSettings.From(hostOptions), _registry.TimeProvider, t => _registry.OnTransition(circuitKey, t)),
                HttpFailureClassifier.From(hostOptions));
            _circuits[key] = entry;
            return entry;
        }
    }

    private void Evict(int maxCircuits)
    {
        // Evicting a batch keeps the scan's cost spread over many creations when hosts churn.
        var toEvict = Math.Max(1, maxCircuits / 10);
        var victims = _circuits.Values
            .Select(e => (Entry: e, State: e.Machine.State))
            .Where(c => c.State != CircuitState.Isolated)
            .OrderBy(c => c.State == CircuitState.Closed ? 0 : 1)
            .ThenBy(c => c.Entry.Machine.LastUsed)
            .Take(toEvict)
            .Select(c => c.Entry)
            .ToList();

        foreach (var victim in victims)
        {
            if (_circuits.TryRemove(victim.Host, out _))
            {
                victim.Machine.Dispose();
            }
        }

        _registry.OnEvicted(ClientName, victims.Count);
    }
}
