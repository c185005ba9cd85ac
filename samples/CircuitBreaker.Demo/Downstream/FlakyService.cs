using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using CircuitBreaker.Demo.Scenario;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CircuitBreaker.Demo.Downstream;

/// <summary>
/// One downstream service of the drill: a real Kestrel server on 127.0.0.1 that answers <c>GET /{name}/{id}</c>
/// as its current <see cref="ServiceBehaviour"/> says. "Down" stops the server, so connections are refused; the
/// way back starts a new server on the same port. The counts survive restarts.
/// </summary>
public sealed class FlakyService : IAsyncDisposable
{
    /// <summary>The request header carrying the id the drill gave a call when the breaker let it through.</summary>
    public const string CallIdHeader = "X-Drill-Call";

    // Ports are picked below the kernel's ephemeral range (32768+ on Linux), so that no outgoing connection
    // takes the port while the service is down and the server can come back on it.
    private const int FirstPort = 20000;
    private const int PortCount = 12000;

    private readonly ConcurrentDictionary<long, ServerCallOutcome> _calls = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ServiceBehaviour _behaviour = ServiceBehaviour.Healthy;
    private WebApplication? _app;
    private int _received;
    private int _answered;
    private int _abandoned;
    private int _untagged;
    private int _duplicates;

    public FlakyService(string name)
    {
        Name = name;
    }

    /// <summary>Gets the service's name, also the first segment of its paths.</summary>
    public string Name { get; }

    /// <summary>Gets the port the service listens on, and comes back on after being down.</summary>
    public int Port { get; private set; }

    /// <summary>Gets the service's address, <c>http://127.0.0.1:{port}/</c>.</summary>
    public Uri BaseAddress => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/");

    /// <summary>Gets what the service does now.</summary>
    public ServiceBehaviour Behaviour => Volatile.Read(ref _behaviour);

    /// <summary>Gets the server's own counts so far.</summary>
    public ServerCounts Counts => new(
        Volatile.Read(ref _received), Volatile.Read(ref _answered), Volatile.Read(ref _abandoned), Volatile.Read(ref _untagged) + Volatile.Read(ref _duplicates));

    /// <summary>Gets each request that reached the server, by drill call id, and what the server made of it.</summary>
    public IReadOnlyDictionary<long, ServerCallOutcome> Calls => _calls;

    /// <summary>Starts the server on a free port.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            Port = FirstPort + Random.Shared.Next(PortCount);
            try
            {
                _app = await StartServerAsync(Port, cancellationToken);
                return;
            }
            catch (IOException) when (attempt < 20)
            {
                // The port is taken: try another.
            }
        }
    }

    /// <summary>Switches to <paramref name="behaviour"/>: stops the server for "down", starts it again on the same port after.</summary>
    public async Task ApplyAsync(ServiceBehaviour behaviour, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // Going down, the server stops first: requests it is still answering keep the old behaviour.
            if (behaviour.Kind == BehaviourKind.Down && _app is { } running)
            {
                _app = null;
                await StopServerAsync(running);
            }

            Volatile.Write(ref _behaviour, behaviour);
            if (behaviour.Kind != BehaviourKind.Down && _app is null)
            {
                _app = await RestartServerAsync(cancellationToken);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Stops the server, waiting for the requests it is answering; the counts are final afterwards.</summary>
    public async Task StopAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_app is { } running)
            {
                _app = null;
                await StopServerAsync(running);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _gate.Dispose();
    }

    private static async Task StopServerAsync(WebApplication app)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private async Task<WebApplication> RestartServerAsync(CancellationToken cancellationToken)
    {
        // The port was ours a moment ago; a socket still closing may hold it for a little while.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await StartServerAsync(Port, cancellationToken);
            }
            catch (IOException) when (attempt < 20)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    private async Task<WebApplication> StartServerAsync(int port, CancellationToken cancellationToken)
    {
        // An empty builder: no appsettings.json, environment variables or logging of its own, only Kestrel.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = $"downstream-{Name}" });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Run(HandleAsync);
        try
        {
            await app.StartAsync(cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var segments = context.Request.Path.Value?.Split('/', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (!HttpMethods.IsGet(context.Request.Method) || segments.Length != 2 || segments[0] != Name
            || !int.TryParse(segments[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        Interlocked.Increment(ref _received);
        var tagged = long.TryParse(context.Request.Headers[CallIdHeader], NumberStyles.None, CultureInfo.InvariantCulture, out var callId);
        if (!tagged)
        {
            Interlocked.Increment(ref _untagged);
        }
        else if (!_calls.TryAdd(callId, ServerCallOutcome.InProgress))
        {
            Interlocked.Increment(ref _duplicates);
        }

        var outcome = ServerCallOutcome.Answered;
        try
        {
            await AnswerAsync(context, id, Behaviour);
            Interlocked.Increment(ref _answered);
        }
        catch (Exception ex) when ((ex is OperationCanceledException or IOException) && context.RequestAborted.IsCancellationRequested)
        {
            outcome = ServerCallOutcome.Abandoned; // the caller hung up first: a slow answer past its AttemptTimeout
            Interlocked.Increment(ref _abandoned);
        }

        if (tagged)
        {
            _calls[callId] = outcome;
        }
    }

    private async Task AnswerAsync(HttpContext context, int id, ServiceBehaviour behaviour)
    {
        if (behaviour.Kind == BehaviourKind.Slow)
        {
            await Task.Delay(behaviour.Delay, context.RequestAborted);
        }

        if (behaviour.Kind == BehaviourKind.Error && Random.Shared.NextDouble() < behaviour.FailureRate)
        {
            context.Response.StatusCode = behaviour.Status;
            await context.Response.WriteAsJsonAsync(new { error = $"{Name} is failing", status = behaviour.Status }, context.RequestAborted);
        }
        else
        {
            await context.Response.WriteAsJsonAsync(new { id, service = Name, name = $"{Name} #{id}" }, context.RequestAborted);
        }
    }
}
