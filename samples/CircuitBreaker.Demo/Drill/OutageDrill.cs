using System.Globalization;
using CircuitBreaker.Demo.Display;
using CircuitBreaker.Demo.Downstream;
using CircuitBreaker.Demo.Scenario;
using CircuitBreaker.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Demo.Drill;

/// <summary>
/// The outage drill: starts the downstream services and the calling app, plays the scenario's timeline while the
/// callers send traffic, waits for recovered circuits to close, and sums up what happened.
/// </summary>
public sealed class OutageDrill : IAsyncDisposable
{
    private readonly DrillScenario _scenario;
    private readonly DrillSettings _settings;
    private readonly IDrillView _view;
    private readonly DrillClock _clock;
    private readonly IReadOnlyList<FlakyService> _services;
    private readonly AdmissionLog _admissions;
    private readonly Dictionary<string, ClientTally> _tallies;
    private readonly TransitionLog _transitions = new();
    private WebApplication? _app;
    private IDisposable? _following;
    private ICircuitBreakerRegistry? _registry;
    private int _phaseNumber;
    private string _phaseName = "starting";

    private OutageDrill(DrillScenario scenario, DrillSettings settings, IDrillView view, IReadOnlyList<FlakyService> services)
    {
        _scenario = scenario;
        _settings = settings;
        _view = view;
        _services = services;
        _clock = new DrillClock(TimeProvider.System);
        _admissions = new AdmissionLog();
        _tallies = services.ToDictionary(s => s.Name, _ => new ClientTally(), StringComparer.Ordinal);
    }

    /// <summary>Gets the calling app, which serves <c>/health</c> (and <c>/metrics</c> with <c>--prometheus</c>).</summary>
    public WebApplication App => _app ?? throw new InvalidOperationException("The drill has not started.");

    /// <summary>Gets the app's address, <c>http://127.0.0.1:{port}</c>.</summary>
    public Uri AppAddress => new(App.Urls.First());

    /// <summary>Starts the downstream services and the calling app; nothing is sent yet.</summary>
    public static async Task<OutageDrill> StartAsync(
        DemoOptions options,
        IConfiguration configuration,
        DrillScenario scenario,
        DrillSettings settings,
        IDrillView view,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(view);
        var services = scenario.Services.Select(name => new FlakyService(name)).ToList();
        var drill = new OutageDrill(scenario, settings, view, services);
        try
        {
            foreach (var service in services)
            {
                await service.StartAsync(cancellationToken);
            }

            var logs = new LogSink(() => drill._clock.Elapsed, view.Log);
            drill._app = ClientHost.Build(options, configuration, services, drill._admissions, logs);
            await drill._app.StartAsync(cancellationToken); // validates the CircuitBreaker options (ValidateOnStart)
            drill._registry = drill._app.Services.GetRequiredService<ICircuitBreakerRegistry>();
            drill._transitions.Recorded += view.Transition;
            drill._following = drill._transitions.Follow(drill._registry, drill._clock);
            return drill;
        }
        catch
        {
            await drill.DisposeAsync();
            throw;
        }
    }

    /// <summary>Describes the drill before it runs.</summary>
    public DrillIntro Intro(IReadOnlyList<string> endpoints)
    {
        var options = Options(_services[0].Name);
        var growth = options.BreakDurationMultiplier > 1
            ? string.Create(CultureInfo.InvariantCulture, $" (x{options.BreakDurationMultiplier} per failed probe, up to {Seconds(options.MaxBreakDuration)})")
            : "";
        var fallbacks = string.Join("; ", _services.Select(s => $"{s.Name}: {Fallbacks(Options(s.Name))}"));
        var breaker = string.Create(
            CultureInfo.InvariantCulture,
            $"opens after {options.FailureThreshold} failures in a row, break {Seconds(options.BreakDuration)}{growth}, AttemptTimeout {Seconds(options.AttemptTimeout)}; fallback {fallbacks}");
        var traffic = string.Create(
            CultureInfo.InvariantCulture,
            $"{_settings.CallersPerService} callers per service, {_settings.RequestsPerSecond:0.#} requests/s each, ids 1-{_settings.HotIds} and {_settings.LongTailShare:0%} rare ids");
        return new DrillIntro(_scenario, _services.Select(s => (s.Name, s.BaseAddress)).ToList(), breaker, traffic, endpoints);
    }

    private static string Fallbacks(CircuitBreakerOptions options)
    {
        var chain = new List<string>();
        if (options.Fallback.OnOpen is not null)
        {
            chain.Add("custom");
        }

        if (options.Fallback.Cache.Enabled)
        {
            chain.Add("cache");
        }

        if (options.Fallback.AlternateBaseAddress is not null)
        {
            chain.Add("alternate");
        }

        if (options.Fallback.Degraded.StatusCode is not null || options.Fallback.Degraded.Body is not null)
        {
            chain.Add("degraded");
        }

        chain.Add("CircuitOpenException");
        return string.Join(" > ", chain);
    }

    /// <summary>Runs the drill to its end (or Ctrl+C) and sums it up.</summary>
    public async Task<DrillSummary> RunAsync(CancellationToken cancellationToken)
    {
        var clients = App.Services.GetRequiredService<IHttpClientFactory>();
        await WarmUpAsync(cancellationToken);
        _clock.Restart();
        using var stopTraffic = new CancellationTokenSource();
        var traffic = new Traffic(clients, _settings).RunAsync(_tallies, stopTraffic.Token, cancellationToken);
        var interrupted = false;
        try
        {
            await PlayTimelineAsync(cancellationToken);
            await SettleAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            interrupted = true;
        }

        await stopTraffic.CancelAsync();
        await traffic; // calls in flight finish (the AttemptTimeout bounds them)
        var elapsed = _clock.Elapsed;
        Volatile.Write(ref _phaseName, "done");
        foreach (var service in _services)
        {
            await service.StopAsync(); // waits for the requests it is answering: its counts are final
        }

        var hosts = _services.Select(Summarize).ToList();
        var checks = DrillChecks.Check(hosts, EndsHealthy, interrupted);
        return new DrillSummary(_scenario.Name, elapsed, interrupted, hosts, checks);
    }

    /// <summary>
    /// Sends one request per service that the service answers 404 without counting it, before the clock starts: a cold
    /// process takes up to a second for its first requests (compiling Kestrel's and HttpClient's paths), and the first
    /// phase would otherwise be over before the callers got their first answers, so the cache would hold nothing to
    /// show once the circuits open. It goes around the drill's clients, so the breaker and the tallies never see it.
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        foreach (var service in _services)
        {
            using var response = await http.GetAsync(new Uri(service.BaseAddress, $"{service.Name}/warm-up"), cancellationToken);
        }
    }

    /// <summary>Gets the drill's state now, for the console.</summary>
    public DrillStatus Status()
    {
        var circuits = _registry?.GetCircuits() ?? [];
        var now = _clock.Now;
        var services = _services.Select(s =>
        {
            var circuit = circuits.FirstOrDefault(c => c.ClientName == s.Name);
            var retryIn = circuit?.State == CircuitState.Open && circuit.RetryAt is { } at ? at - now : (TimeSpan?)null;
            return new ServiceStatus(s.Name, s.Behaviour, circuit?.State, circuit?.ConsecutiveFailures ?? 0, retryIn, _tallies[s.Name].Snapshot(), s.Counts);
        }).ToList();
        return new DrillStatus(_clock.Elapsed, _scenario.Duration, Volatile.Read(ref _phaseNumber), _scenario.Phases.Count, Volatile.Read(ref _phaseName), services);
    }

    public async ValueTask DisposeAsync()
    {
        _following?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        foreach (var service in _services)
        {
            await service.DisposeAsync();
        }
    }

    private async Task PlayTimelineAsync(CancellationToken cancellationToken)
    {
        var phaseEnd = TimeSpan.Zero;
        for (var i = 0; i < _scenario.Phases.Count; i++)
        {
            var phase = _scenario.Phases[i];
            Volatile.Write(ref _phaseName, phase.Name);
            Volatile.Write(ref _phaseNumber, i + 1);
            _view.PhaseStarted(_clock.Elapsed, i + 1, phase, phase.Describe(_scenario.Services));
            await Task.WhenAll(_services.Select(s => s.ApplyAsync(phase.BehaviourOf(s.Name), cancellationToken)));

            // Phases end on a fixed schedule from the start, however long stopping or starting a server took.
            phaseEnd += phase.Duration;
            var wait = phaseEnd - _clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken);
            }
        }
    }

    /// <summary>
    /// After the timeline the traffic goes on, for at most <see cref="DrillSettings.SettleTimeout"/>, until every circuit
    /// whose downstream ended healthy has closed: its last break may end after the last phase.
    /// </summary>
    private async Task SettleAsync(CancellationToken cancellationToken)
    {
        var deadline = _clock.Elapsed + _settings.SettleTimeout;
        var waiting = NotYetClosed();
        if (waiting.Count == 0)
        {
            return;
        }

        Volatile.Write(ref _phaseName, "settling");
        _view.Note(_clock.Elapsed, $"timeline over; traffic goes on until {string.Join(" and ", waiting)} close{(waiting.Count == 1 ? "s" : "")} (at most {Seconds(_settings.SettleTimeout)})");
        while (NotYetClosed().Count > 0 && _clock.Elapsed < deadline)
        {
            await Task.Delay(100, cancellationToken);
        }
    }

    private List<string> NotYetClosed()
    {
        var circuits = _registry!.GetCircuits();
        return _services.Where(s => EndsHealthy(s.Name) && circuits.Any(c => c.ClientName == s.Name && c.State != CircuitState.Closed))
            .Select(s => s.Name)
            .ToList();
    }

    private bool EndsHealthy(string service) => _scenario.Phases[^1].BehaviourOf(service).Kind == BehaviourKind.Healthy;

    private HostSummary Summarize(FlakyService service)
    {
        var finalState = _registry!.GetCircuits().FirstOrDefault(c => c.ClientName == service.Name)?.State;
        return DrillChecks.Summarize(
            service,
            _tallies[service.Name].Snapshot(),
            _transitions.Of(service.Name),
            _admissions.Of(service.Name),
            finalState,
            Options(service.Name).HalfOpenProbes);
    }

    private CircuitBreakerOptions Options(string client) =>
        App.Services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get(client);

    private static string Seconds(TimeSpan? span) =>
        span is not { } s ? "off"
        : s.TotalSeconds >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{s.TotalSeconds:0.#} s")
        : string.Create(CultureInfo.InvariantCulture, $"{s.TotalMilliseconds:0} ms");
}
