using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace CircuitBreaker.Http;

/// <summary>
/// Holds every circuit of the application. Handlers are rebuilt by <c>IHttpClientFactory</c> every few
/// minutes, so circuit state lives here, in a singleton, and never in a handler.
/// </summary>
/// <remarks>
/// Reloads are watched here rather than through <see cref="IOptionsMonitor{TOptions}"/>: the monitor
/// re-validates inside the reload callback and throws into whatever triggered the reload, whereas an invalid
/// reload must be logged and ignored, leaving the last valid options in force.
/// </remarks>
internal sealed class CircuitBreakerRegistry : ICircuitBreakerRegistry, ICircuitFleetControl, IDisposable
{
    private readonly ConcurrentDictionary<string, ClientCircuits> _clients = new(StringComparer.Ordinal);
    private readonly IOptionsFactory<CircuitBreakerOptions> _optionsFactory;
    private readonly ILogger _logger;
    private readonly List<IDisposable> _reloadSubscriptions = [];

    public CircuitBreakerRegistry(
        IOptionsFactory<CircuitBreakerOptions> optionsFactory,
        IEnumerable<IConfigureOptions<CircuitBreakerOptions>> setups,
        TimeProvider timeProvider,
        IMeterFactory meterFactory,
        ILogger<CircuitBreakerRegistry>? logger = null)
    {
        _optionsFactory = optionsFactory;
        TimeProvider = timeProvider;
        _logger = logger ?? NullLogger<CircuitBreakerRegistry>.Instance;
        Metrics = new CircuitBreakerMetrics(meterFactory, this);
        AttemptTimeouts = new AttemptTimeouts(timeProvider);

        // Sections of one configuration root share its reload token: one subscription per root, not per call
        // of AddCircuitBreaker, so a reload re-applies each client once.
        var sections = setups.OfType<CircuitBreakerConfiguration>()
            .Select(c => c.Section)
            .OfType<IConfiguration>()
            .DistinctBy(s => s.GetReloadToken());
        foreach (var section in sections)
        {
            _reloadSubscriptions.Add(ChangeToken.OnChange(section.GetReloadToken, Reload));
        }
    }

    public event EventHandler<CircuitStateChangedEventArgs>? StateChanged;

    public TimeProvider TimeProvider { get; }

    public ILogger Logger => _logger;

    public CircuitBreakerMetrics Metrics { get; }

    public AttemptTimeouts AttemptTimeouts { get; }

    /// <summary>Every circuit of every client.</summary>
    internal IEnumerable<CircuitEntry> Entries => _clients.Values.SelectMany(c => c.Entries);

    /// <summary>
    /// The circuits of one client. Invalid options do not throw here, where <c>IHttpClientFactory</c> builds the
    /// handler (it would remember the failure for the handler's lifetime, past the reload that fixes it): the
    /// client's first call throws instead, until a reload brings valid options.
    /// </summary>
    public ClientCircuits GetClient(string clientName) =>
        _clients.TryGetValue(clientName, out var client)
            ? client
            : _clients.GetOrAdd(clientName, static (name, self) => self.CreateClient(name), this);

    public IReadOnlyList<CircuitInfo> GetCircuits() =>
        Entries.Select(e => new CircuitInfo(e.Key, e.Machine.GetSnapshot())).ToList();

    public void Isolate(CircuitKey key) => GetClient(key.ClientName ?? string.Empty).GetOrCreate(ParseAuthority(key)).Machine.Isolate();

    public bool Reset(CircuitKey key)
    {
        if (TryGet(key, out var entry))
        {
            entry.Machine.Reset();
            return true;
        }

        return false;
    }

    void ICircuitFleetControl.Open(CircuitKey key, TimeSpan breakDuration, TimeSpan probeWait) =>
        GetClient(key.ClientName ?? string.Empty).GetOrCreate(ParseAuthority(key)).Machine.OpenForFleet(breakDuration, probeWait);

    bool ICircuitFleetControl.GrantProbe(CircuitKey key) => TryGet(key, out var entry) && entry.Machine.GrantFleetProbe();

    bool ICircuitFleetControl.Close(CircuitKey key) => TryGet(key, out var entry) && entry.Machine.CloseForFleet();

    void ICircuitFleetControl.ReleaseAll()
    {
        foreach (var entry in Entries)
        {
            entry.Machine.ReleaseFleetHold();
        }
    }

    public void Dispose()
    {
        foreach (var subscription in _reloadSubscriptions)
        {
            subscription.Dispose();
        }

        foreach (var entry in Entries)
        {
            entry.Machine.Dispose();
        }
    }

    internal void OnTransition(CircuitEntry circuit, CircuitTransition transition)
    {
        var key = circuit.Key;
        LogTransition(key, transition);
        Metrics.RecordTransition(circuit, transition);

        var handlers = StateChanged;
        if (handlers is null)
        {
            return;
        }

        var args = new CircuitStateChangedEventArgs(key, transition);
        foreach (var handler in handlers.GetInvocationList().Cast<EventHandler<CircuitStateChangedEventArgs>>())
        {
            try
            {
                handler(this, args);
            }
#pragma warning disable CA1031 // A listener's fault must never fail the request whose outcome moved the circuit.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.StateChangedHandlerFailed(_logger, ex, key.Authority, key.ClientName);
            }
        }
    }

    internal void OnEvicted(string clientName, int count) => Log.CircuitsEvicted(_logger, count, clientName);

    private void LogTransition(CircuitKey key, CircuitTransition t)
    {
        switch (t.State)
        {
            case CircuitState.Open when t.PreviousState == CircuitState.HalfOpen:
                Log.CircuitReopened(_logger, key.Authority, key.ClientName, t.LastFailure, t.BreakDuration);
                break;
            case CircuitState.Open:
                var ratio = t.FailureRatio is { } r ? r.ToString("0.###", CultureInfo.InvariantCulture) : "not sampled";
                Log.CircuitOpened(_logger, key.Authority, key.ClientName, t.ConsecutiveFailures, ratio, t.LastFailure, t.BreakDuration);
                break;
            case CircuitState.HalfOpen:
                Log.CircuitHalfOpened(_logger, key.Authority, key.ClientName);
                break;
            case CircuitState.Closed:
                Log.CircuitClosed(_logger, key.Authority, key.ClientName, t.PreviousState);
                break;
            default:
                Log.CircuitIsolated(_logger, key.Authority, key.ClientName, t.PreviousState);
                break;
        }
    }

    private bool TryGet(CircuitKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CircuitEntry? entry)
    {
        entry = null;
        return _clients.TryGetValue(key.ClientName ?? string.Empty, out var client) && client.TryGet(ParseAuthority(key), out entry);
    }

    private static HostKey ParseAuthority(CircuitKey key) =>
        Uri.TryCreate(key.Authority, UriKind.Absolute, out var uri) && !string.IsNullOrEmpty(uri.Host)
            ? new HostKey(uri)
            : throw new ArgumentException($"'{key.Authority}' is not an absolute authority such as https://users.internal:443.", nameof(key));

    private ClientCircuits CreateClient(string name)
    {
        try
        {
            return new ClientCircuits(name, _optionsFactory.Create(name), invalid: null, this);
        }
        catch (OptionsValidationException ex)
        {
            return new ClientCircuits(name, options: null, ex, this);
        }
    }

    private void Reload()
    {
        foreach (var client in _clients.Values)
        {
            try
            {
                client.Apply(_optionsFactory.Create(client.ClientName));
            }
            catch (OptionsValidationException ex)
            {
                Log.ReloadRejected(_logger, client.ClientName, ex.Message);
                client.RejectReload(ex);
            }
        }
    }
}
