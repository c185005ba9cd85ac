using CircuitBreaker.Http.Redis;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Fleet;

/// <summary>
/// One instance of an app in fleet mode: a service provider of its own (registry, handlers, coordinator) with a
/// "users" client whose circuits are shared through a real Redis. Instances of one test share a fake clock, as
/// instances with synchronised clocks would.
/// </summary>
internal sealed class FleetInstance : IAsyncDisposable
{
    public const string ClientName = "users";

    private readonly ServiceProvider _services;
    private readonly List<IHostedService> _hosted;
    private int _disposed;

    private FleetInstance(string name, ServiceProvider services, LogSignals logs)
    {
        Name = name;
        Logs = logs;
        _services = services;
        _hosted = services.GetServices<IHostedService>().ToList();
        Registry = services.GetRequiredService<ICircuitBreakerRegistry>();
        Client = services.GetRequiredService<IHttpClientFactory>().CreateClient(ClientName);
    }

    public string Name { get; }

    public LogSignals Logs { get; }

    public ICircuitBreakerRegistry Registry { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => _services;

    /// <param name="name">The instance's name in the fleet.</param>
    /// <param name="downstream">Where the client sends its requests.</param>
    /// <param name="redis">The fleet's Redis.</param>
    /// <param name="time">The clock of the fleet.</param>
    /// <param name="keyPrefix">A prefix of the test's own, so that tests sharing a Redis never see each other.</param>
    /// <param name="brokenPath">When set, this instance cannot reach the downstream: every request fails to connect, as with a local network fault.</param>
    /// <param name="fleet">Changes to the fleet options.</param>
    /// <param name="redisPort">The port this instance reaches Redis on, when not the server's own (a <see cref="TcpRelay"/> in front of it).</param>
    /// <param name="awaitConnected">Whether to return only once the instance has joined the fleet.</param>
    /// <param name="beforeStart">Runs once the instance is built and before its coordinator starts, to watch what it does as it joins.</param>
    /// <param name="otherLogs">A logging provider of the test's own, after the one <see cref="Logs"/> reads.</param>
    /// <param name="breaker">Changes to the circuit breaker options, after the fleet tests' own.</param>
    public static async Task<FleetInstance> StartAsync(
        string name,
        KestrelDownstream downstream,
        RedisServer redis,
        FakeTimeProvider time,
        string keyPrefix,
        bool brokenPath = false,
        Action<RedisCoordinationOptions>? fleet = null,
        int? redisPort = null,
        bool awaitConnected = true,
        Action<FleetInstance>? beforeStart = null,
        ILoggerProvider? otherLogs = null,
        Action<CircuitBreakerOptions>? breaker = null)
    {
        var logs = new LogSignals();
        var services = new ServiceCollection();
        services.AddLogging(b =>
        {
            b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
            if (otherLogs is not null)
            {
                b.AddProvider(otherLogs);
            }
        });
        services.AddSingleton<TimeProvider>(time);
        services.AddHealthChecks().AddCircuitBreakerFleet();
        var client = services.AddHttpClient(ClientName, c => c.BaseAddress = downstream.BaseAddress)
            .AddCircuitBreaker(o =>
            {
                o.FailureThreshold = 3;
                o.BreakDuration = TimeSpan.FromSeconds(10);
                o.AttemptTimeout = TimeSpan.FromSeconds(5);
                breaker?.Invoke(o);
            })
            .AddRedisCoordination(o =>
            {
                o.ConnectionString = redisPort is { } port ? $"127.0.0.1:{port}" : redis.ConnectionString;
                o.KeyPrefix = keyPrefix;
                o.InstanceName = name;
                o.ProbeWait = TimeSpan.FromSeconds(30);
                fleet?.Invoke(o);
            });
        if (brokenPath)
        {
            client.ConfigurePrimaryHttpMessageHandler(() => new UnreachableHandler());
        }

        var instance = new FleetInstance(name, services.BuildServiceProvider(), logs);
        beforeStart?.Invoke(instance);
        foreach (var hosted in instance._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        if (awaitConnected)
        {
            await logs.WaitAsync("FleetConnected", TimeSpan.FromSeconds(20));
        }

        return instance;
    }

    public CircuitState StateOf(KestrelDownstream downstream) =>
        Registry.GetCircuits().SingleOrDefault(c => c.Authority == downstream.Authority)?.State ?? CircuitState.Closed;

    /// <summary>Sends one GET and says what became of it: the status code, or the exception's type name.</summary>
    public async Task<string> GetAsync(string path = "/")
    {
        try
        {
            using var response = await Client.GetAsync(new Uri(path, UriKind.Relative));
            return ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is CircuitOpenException or HttpRequestException or TaskCanceledException)
        {
            return ex.GetType().Name;
        }
    }

    /// <summary>Completes when this instance's circuit of <paramref name="downstream"/> reaches <paramref name="state"/> through a change from <paramref name="source"/>.</summary>
    public Task WhenState(KestrelDownstream downstream, CircuitState state, CircuitChangeSource? source = null)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(object? sender, CircuitStateChangedEventArgs e)
        {
            if (e.Key.Authority == downstream.Authority && e.State == state && (source is null || e.Source == source))
            {
                reached.TrySetResult();
            }
        }

        Registry.StateChanged += Handler;
        _ = reached.Task.ContinueWith(_ => Registry.StateChanged -= Handler, TaskScheduler.Default);
        return reached.Task;
    }

    public async ValueTask DisposeAsync()
    {
        // A test may stop one instance of a bed before the bed disposes them all.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var hosted in _hosted)
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        Client.Dispose();
        await _services.DisposeAsync();
    }

    /// <summary>Stops the instance's hosted services (the coordinator among them), as the host does on shutdown, and leaves the rest running.</summary>
    public async Task StopHostedServicesAsync()
    {
        foreach (var hosted in _hosted)
        {
            await hosted.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Fails every request as a refused connection would, without a network.</summary>
    private sealed class UnreachableHandler : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromException<HttpResponseMessage>(new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (simulated local network fault)"));
    }
}
