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
/// reload must be logged and ignored, leaving the last valid options in force. A reload that follows a
/// configuration file's failure to load is held back the same way (see <see cref="ConfigurationFileFailures"/>).
/// </remarks>
internal sealed class CircuitBreakerRegistry : ICircuitBreakerRegistry, ICircuitFleetControl, IDisposable
{
    private readonly ConcurrentDictionary<string, ClientCircuits> _clients = new(StringComparer.Ordinal);
    private readonly IOptionsFactory<CircuitBreakerOptions> _optionsFactory;
    private readonly ILogger _logger;
    private readonly List<IDisposable> _reloadSubscriptions = [];
    private readonly List<SectionBinding> _bindings;
    private readonly List<ConfigurationFileFailures> _files = [];
    private long _reloads; // counts reloads, so that a client created during one can tell it may have been missed

    public CircuitBreakerRegistry(
        IOptionsFactory<CircuitBreakerOptions> optionsFactory,
        IEnumerable<IConfigureOptions<CircuitBreakerOptions>> setups,
        TimeProvider timeProvider,
        IMeterFactory meterFactory,
        ILogger<CircuitBreakerRegistry>? logger = null,
        IConfiguration? appConfiguration = null)
    {
        _optionsFactory = optionsFactory;
        TimeProvider = timeProvider;
        _logger = logger is null ? NullLogger<CircuitBreakerRegistry>.Instance : new GuardedLogger(logger);
        TelemetryFaults = new TelemetryFaults(_logger);
        Metrics = new CircuitBreakerMetrics(meterFactory, this);
        AttemptTimeouts = new AttemptTimeouts(timeProvider);

        // Sections of one configuration root share its reload token: one subscription per root, not per call
        // of AddCircuitBreaker, so a reload re-applies each client once.
        _bindings = setups.OfType<CircuitBreakerConfiguration>()
            .Where(c => c.Section is not null)
            .Select(c => new SectionBinding(c, FilesOf(c.Section!, appConfiguration)))
            .ToList();
        foreach (var section in _bindings.Select(b => b.Section).DistinctBy(s => s.GetReloadToken()))
        {
            _reloadSubscriptions.Add(ChangeToken.OnChange(section.GetReloadToken, Reload));
        }
    }

    public event EventHandler<CircuitStateChangedEventArgs>? StateChanged;

    public TimeProvider TimeProvider { get; }

    /// <summary>The logger of every circuit event, which never throws (see <see cref="GuardedLogger"/>).</summary>
    public ILogger Logger => _logger;

    /// <summary>Where a metrics or tracing listener that threw is reported.</summary>
    public TelemetryFaults TelemetryFaults { get; }

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
        _clients.TryGetValue(clientName, out var client) ? client : AddClient(clientName);

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

        foreach (var files in _files)
        {
            files.Dispose();
        }

        foreach (var entry in Entries)
        {
            entry.Machine.Dispose();
        }

        foreach (var client in _clients.Values)
        {
            client.ReleaseCache();
        }
    }

    internal void OnTransition(CircuitEntry circuit, CircuitTransition transition)
    {
        var key = circuit.Key;
        if (transition.Source == CircuitChangeSource.Eviction)
        {
            // Logged by OnEvicted (OpenCircuitsEvicted), and not a close the circuit.close counter counts: no probe, operator
            // or fleet decided it. The state gauge no longer lists the circuit.
            RaiseStateChanged(key, transition);
            return;
        }

        try
        {
            LogTransition(key, transition);
            Metrics.RecordTransition(circuit, transition);
        }
        finally
        {
            // Even when a logging provider or a metrics listener throws: the handlers follow the circuit's state (the
            // fleet coordinator among them), and a transition they miss is one they never hear of again.
            RaiseStateChanged(key, transition);
        }
    }

    private void RaiseStateChanged(CircuitKey key, CircuitTransition transition)
    {
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

    internal void OnEvicted(string clientName, List<(CircuitEntry Entry, CircuitState State)> evicted)
    {
        Log.CircuitsEvicted(_logger, evicted.Count, clientName);

        // Closed circuits go first, so these are evicted only when no circuit of the client is closed.
        // Their hosts get fresh closed circuits, and calls flow to them again: an operator must hear of it.
        var notClosed = evicted.Where(e => e.State != CircuitState.Closed).ToList();
        if (notClosed.Count > 0 && _logger.IsEnabled(LogLevel.Warning))
        {
            var named = string.Join(", ", notClosed.Take(10).Select(e => $"{e.Entry.Key.Authority} ({CircuitBreakerTelemetry.Name(e.State)})"));
            Log.OpenCircuitsEvicted(_logger, notClosed.Count, clientName, notClosed.Count > 10 ? named + ", ..." : named);
        }

        // Every one, not only those read as not closed: a call still out on a closed one can open it after the eviction read
        // its state and before it was retired, and its listeners heard that. Each tells only what it is in now.
        foreach (var (entry, _) in evicted)
        {
            entry.Machine.AnnounceEviction();
        }
    }

    private void LogTransition(CircuitKey key, CircuitTransition t)
    {
        switch (t.State)
        {
            // Not CircuitOpened: this instance may not have failed at all, and the failure counts it would log are its own.
            case CircuitState.Open when t.Source == CircuitChangeSource.Fleet:
                Log.CircuitOpenedByFleet(_logger, key.Authority, key.ClientName, t.PreviousState, t.BreakDuration);
                break;
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

    /// <summary>
    /// The file watch of the root <paramref name="section"/> belongs to, shared by every section of that root.
    /// A section keeps its root private; the app's configuration is that root when both hand out the same reload
    /// token, as a root does to all its sections. Sections of a root the registry cannot see go unwatched.
    /// </summary>
    private ConfigurationFileFailures? FilesOf(IConfiguration section, IConfiguration? appConfiguration)
    {
        var root = section as IConfigurationRoot
            ?? (appConfiguration is IConfigurationRoot app && ReferenceEquals(app.GetReloadToken(), section.GetReloadToken()) ? app : null);
        if (root is null)
        {
            return null;
        }

        var files = _files.Find(f => ReferenceEquals(f.Root, root));
        if (files is null)
        {
            files = new ConfigurationFileFailures(root, _logger);
            _files.Add(files);
        }

        return files;
    }

    private ClientCircuits AddClient(string clientName)
    {
        var reloads = Volatile.Read(ref _reloads);
        var client = _clients.GetOrAdd(clientName, static (name, self) => self.CreateClient(name), this);
        if (Volatile.Read(ref _reloads) != reloads)
        {
            // A reload ran while the client's options were being read, and may have gone through the clients before
            // this one was among them: apply what it would have applied. Twice does no harm; a state is never reset.
            Reload(client, BindingsNow());
        }

        return client;
    }

    private List<(SectionBinding Binding, string? BrokenFile)> BindingsNow() =>
        _bindings.Select(b => (Binding: b, BrokenFile: b.Files?.BrokenFile)).ToList();

    private void Reload()
    {
        Interlocked.Increment(ref _reloads);

        // Read once, so that every client of this reload sees the same files as broken.
        var bindings = BindingsNow();
        var warned = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (binding, brokenFile) in bindings)
        {
            if (brokenFile is null && binding.NoteEmptied() && warned.Add(binding.Path))
            {
                Log.SectionEmptied(_logger, binding.Path);
            }
        }

        foreach (var client in _clients.Values)
        {
            Reload(client, bindings);
        }
    }

    private void Reload(ClientCircuits client, List<(SectionBinding Binding, string? BrokenFile)> bindings)
    {
        var held = bindings.Find(b => b.BrokenFile is not null && b.Binding.Configuration.AppliesTo(client.ClientName));
        if (held.BrokenFile is not null)
        {
            Log.ReloadHeldBack(_logger, client.ClientName, held.Binding.Path, held.BrokenFile);
            return;
        }

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

    /// <summary>
    /// A bound section, and whether it held any options at the last reload applied from it.
    /// </summary>
    /// <remarks>
    /// A section that empties is applied, not held back: deleting the section (or every key of it) is how an
    /// operator returns to the defaults, and every options consumer in .NET reads it that way. Holding it back
    /// would leave no way to get the defaults without a restart. A warning makes it visible instead, since a source
    /// that silently lost its settings looks the same; the one such loss the breaker can tell apart, a file that
    /// failed to load, is held back through <see cref="ConfigurationFileFailures"/>.
    /// </remarks>
    private sealed class SectionBinding
    {
        private volatile bool _hadOptions;

        public SectionBinding(CircuitBreakerConfiguration configuration, ConfigurationFileFailures? files)
        {
            Configuration = configuration;
            Files = files;
            _hadOptions = Section.GetChildren().Any();
        }

        public CircuitBreakerConfiguration Configuration { get; }

        public ConfigurationFileFailures? Files { get; }

        public IConfiguration Section => Configuration.Section!;

        public string Path => Section is IConfigurationSection section ? section.Path : "(configuration root)";

        /// <summary>Notes the section's content at a reload; true when it has just gone from some options to none.</summary>
        public bool NoteEmptied()
        {
            var hasOptions = Section.GetChildren().Any();
            var emptied = _hadOptions && !hasOptions;
            _hadOptions = hasOptions;
            return emptied;
        }
    }
}
