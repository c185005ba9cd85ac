using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A real Kestrel server on 127.0.0.1 with a random port, whose answers a test scripts through
/// <see cref="Behavior"/> (or the shortcuts below) and which counts every request it receives.
/// </summary>
internal sealed class KestrelDownstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _requestsByPath = new(StringComparer.Ordinal);
    private int _requestCount;
    private bool _stopped;
    private TaskCompletionSource _nextArrival = NewSignal();

    private KestrelDownstream(WebApplication app)
    {
        _app = app;
        _app.Run(HandleAsync);
    }

    /// <summary>Gets the address the server listens on, for example <c>http://127.0.0.1:41234/</c>. It stays valid after <see cref="StopAsync"/>.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Gets the bound port.</summary>
    public int Port => BaseAddress.Port;

    /// <summary>Gets the authority a circuit of this server is keyed by: <c>http://127.0.0.1:{port}</c>.</summary>
    public string Authority => $"{BaseAddress.Scheme}://{BaseAddress.Host}:{BaseAddress.Port}";

    /// <summary>Gets the number of requests received so far.</summary>
    public int RequestCount => Volatile.Read(ref _requestCount);

    /// <summary>Gets or sets what the server does with each request; by default it answers 200 "ok".</summary>
    public Func<HttpContext, Task> Behavior { get; set; } = Respond(StatusCodes.Status200OK, "ok");

    public static async Task<KestrelDownstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");

        // A request still pending when the test ends must not hold the shutdown for the default 30 s.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));

        var server = new KestrelDownstream(builder.Build());
        await server._app.StartAsync();
        var address = server._app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    /// <summary>Returns the same server addressed by another host name (for example <c>localhost</c>): another authority, so another circuit.</summary>
    public Uri AddressFor(string host) => new UriBuilder(BaseAddress) { Host = host }.Uri;

    /// <summary>Gets the number of requests received for one path, such as <c>/users</c>.</summary>
    public int RequestsTo(string path) => _requestsByPath.TryGetValue(path, out var count) ? count : 0;

    /// <summary>Answers every request with <paramref name="statusCode"/> and <paramref name="body"/>.</summary>
    public void RespondWith(int statusCode, string body = "") => Behavior = Respond(statusCode, body);

    /// <summary>Waits <paramref name="delay"/> before answering 200, or until the client gives up on the request.</summary>
    public void RespondAfter(TimeSpan delay) => Behavior = async context =>
    {
        await Task.Delay(delay, context.RequestAborted);
        await Respond(StatusCodes.Status200OK, "late")(context);
    };

    /// <summary>Answers 200 "ok" once <paramref name="release"/> completes: a request in flight for as long as the test wants.</summary>
    public void RespondWhen(Task release) => Behavior = async context =>
    {
        await release.WaitAsync(context.RequestAborted);
        await Respond(StatusCodes.Status200OK, "ok")(context);
    };

    /// <summary>
    /// Never answers requests for <paramref name="path"/> (every path when <see langword="null"/>): they stay pending
    /// until the client gives up or the server stops. Other paths are answered 200 "ok" at once.
    /// </summary>
    public void Hang(string? path = null)
    {
        var answer = Respond(StatusCodes.Status200OK, "ok");
        Behavior = context => path is null || context.Request.Path == path
            ? Task.Delay(Timeout.InfiniteTimeSpan, context.RequestAborted)
            : answer(context);
    }

    /// <summary>A task that completes when the next request arrives; ask for it before sending that request.</summary>
    public Task NextRequestArrival() => Volatile.Read(ref _nextArrival).Task;

    /// <summary>Stops listening: from now on the port refuses connections, while <see cref="BaseAddress"/> still points at it.</summary>
    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _app.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }

    private static Func<HttpContext, Task> Respond(int statusCode, string body) => context =>
    {
        context.Response.StatusCode = statusCode;
        return context.Response.WriteAsync(body, context.RequestAborted);
    };

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requestCount);
        _requestsByPath.AddOrUpdate(context.Request.Path.Value ?? "/", 1, static (_, count) => count + 1);
        Interlocked.Exchange(ref _nextArrival, NewSignal()).TrySetResult();
        return Behavior(context);
    }
}
