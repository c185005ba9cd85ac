using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Tests.Reliability;

/// <summary>What a chaos downstream does with the requests it gets.</summary>
internal enum ChaosMode
{
    /// <summary>200 with a cacheable body.</summary>
    Healthy,

    /// <summary>503.</summary>
    ServerError,

    /// <summary>Answers only after far longer than the client's AttemptTimeout.</summary>
    Slow,

    /// <summary>Sends the headers and part of the body, then aborts the connection.</summary>
    ResetMidBody,

    /// <summary>Answers with a status line that is not HTTP (raw server only).</summary>
    GarbageStatusLine,

    /// <summary>Not listening: connections are refused.</summary>
    Down,
}

/// <summary>The request id header every chaos request carries, so that client, breaker and server can be reconciled call by call.</summary>
internal static class ChaosHeaders
{
    public const string RequestId = "X-Chaos-Request";

    public static int IdOf(HttpRequestMessage request) =>
        request.Headers.TryGetValues(RequestId, out var values) && int.TryParse(values.First(), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : -1;
}

/// <summary>What a chaos server saw: how many times each request id arrived, and how many connections are open.</summary>
internal sealed class ServerTally(int capacity)
{
    private readonly int[] _received = new int[capacity];
    private int _unknown;
    private int _openConnections;
    private int _connectionsAccepted;

    public int OpenConnections => Volatile.Read(ref _openConnections);

    public int ConnectionsAccepted => Volatile.Read(ref _connectionsAccepted);

    public int Unknown => Volatile.Read(ref _unknown);

    public int Received(int id) => Volatile.Read(ref _received[id]);

    public int Total => _received.Sum() + Unknown;

    public void Arrived(string? idText)
    {
        if (int.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id >= 0 && id < _received.Length)
        {
            Interlocked.Increment(ref _received[id]);
        }
        else
        {
            Interlocked.Increment(ref _unknown);
        }
    }

    public void ConnectionOpened()
    {
        Interlocked.Increment(ref _openConnections);
        Interlocked.Increment(ref _connectionsAccepted);
    }

    public void ConnectionClosed() => Interlocked.Decrement(ref _openConnections);
}

/// <summary>
/// A real Kestrel server on 127.0.0.1 whose behaviour switches between <see cref="ChaosMode.Healthy"/>,
/// <see cref="ChaosMode.ServerError"/>, <see cref="ChaosMode.Slow"/>, <see cref="ChaosMode.ResetMidBody"/> and
/// <see cref="ChaosMode.Down"/> (the server is stopped, and started again on the same port). It never drops a
/// request it has counted without sending at least the start of an answer, so a client never retries a request
/// the server already saw, and the server's count is exact.
/// </summary>
internal sealed class ChaosKestrel(ServerTally tally, TimeSpan slowAnswer) : IAsyncDisposable
{
    private static readonly byte[] PartialBody = Encoding.ASCII.GetBytes(new string('x', 100));
    private readonly SemaphoreSlim _switching = new(1, 1);
    private WebApplication? _app;
    private volatile ChaosMode _mode = ChaosMode.Healthy;
    private CancellationTokenSource _phase = new();

    public int Port { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}/");

    public ChaosMode Mode => _mode;

    public async Task StartAsync() => _app = await StartAppAsync(port: 0);

    public async Task SwitchAsync(ChaosMode mode)
    {
        await _switching.WaitAsync();
        try
        {
            // Calls held by the slow mode are answered now rather than cut off, so the server never drops a
            // request it counted without answering it (a client would retry such a request on a new connection).
            var previous = Interlocked.Exchange(ref _phase, new CancellationTokenSource());
            _mode = mode;
            using (previous)
            {
                await previous.CancelAsync();
            }

            if (mode == ChaosMode.Down && _app is { } app)
            {
                _app = null;
                await app.StopAsync();
                await app.DisposeAsync();
            }
            else if (mode != ChaosMode.Down && _app is null)
            {
                _app = await StartAppAsync(Port);
            }
        }
        finally
        {
            _switching.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await SwitchAsync(ChaosMode.Down);
        _phase.Dispose();
        _switching.Dispose();
    }

    private async Task<WebApplication> StartAppAsync(int port)
    {
        for (var attempt = 0; ; attempt++)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, listen => listen.Use(next => async connection =>
            {
                tally.ConnectionOpened();
                try
                {
                    await next(connection);
                }
                finally
                {
                    tally.ConnectionClosed();
                }
            })));
            var app = builder.Build();
            app.Run(HandleAsync);
            try
            {
                await app.StartAsync();
                if (Port == 0)
                {
                    var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
                    Port = new Uri(address).Port;
                }

                return app;
            }
            catch (IOException) when (attempt < 50)
            {
                // The port is still held by the previous run of the server: try again shortly.
                await app.DisposeAsync();
                await Task.Delay(20);
            }
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        tally.Arrived(context.Request.Headers[ChaosHeaders.RequestId]);
        var phase = Volatile.Read(ref _phase).Token;
        switch (_mode)
        {
            case ChaosMode.Healthy:
                context.Response.Headers.CacheControl = "max-age=60";
                await context.Response.WriteAsync("ok " + context.Request.Path, context.RequestAborted);
                break;
            case ChaosMode.Slow:
                using (var both = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, phase))
                {
                    try
                    {
                        await Task.Delay(slowAnswer, both.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        // the client gave up, or the slow phase is over: answer if anyone still listens
                    }
                }

                if (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.WriteAsync("late", context.RequestAborted);
                }

                break;
            case ChaosMode.ResetMidBody:
                context.Response.ContentLength = 1_000;
                await context.Response.Body.WriteAsync(PartialBody, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                context.Abort();
                break;
            default:
                // ServerError, or a request that arrived while the server was being taken down.
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsync("unavailable", context.RequestAborted);
                break;
        }
    }
}

/// <summary>
/// A minimal HTTP/1.1 server on a raw <see cref="TcpListener"/> (127.0.0.2), for the fault Kestrel cannot
/// produce: a garbage status line (<c>HTTP/1.1 abc</c>). It also answers 200 and 503 with keep-alive, and goes
/// <see cref="ChaosMode.Down"/> by closing its listener and its idle connections. Like <see cref="ChaosKestrel"/>
/// it answers (at least in part) every request it counted.
/// </summary>
internal sealed class ChaosRawServer(ServerTally tally) : IAsyncDisposable
{
    private static readonly IPAddress Address = IPAddress.Parse("127.0.0.2");
    private static readonly byte[] Garbage = Encoding.ASCII.GetBytes("HTTP/1.1 abc\r\n\r\n");
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly SemaphoreSlim _switching = new(1, 1);
    private TcpListener? _listener;
    private CancellationTokenSource _up = new();
    private Task _accepting = Task.CompletedTask;
    private volatile ChaosMode _mode = ChaosMode.Healthy;

    public int Port { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.2:{Port}/");

    public ChaosMode Mode => _mode;

    public Task StartAsync() => SwitchAsync(ChaosMode.Healthy, force: true);

    public Task SwitchAsync(ChaosMode mode) => SwitchAsync(mode, force: false);

    public async ValueTask DisposeAsync()
    {
        await SwitchAsync(ChaosMode.Down);
        await Task.WhenAll(_connections.Keys);
        _up.Dispose();
        _switching.Dispose();
    }

    private async Task SwitchAsync(ChaosMode mode, bool force)
    {
        await _switching.WaitAsync();
        try
        {
            var wasDown = _listener is null;
            _mode = mode;
            if (mode == ChaosMode.Down && !wasDown)
            {
                // Stop listening (new connections are refused) and close idle connections; a connection in
                // the middle of a request finishes it first.
                await _up.CancelAsync();
                _listener!.Stop();
                _listener = null;
                await _accepting;
            }
            else if ((mode != ChaosMode.Down && wasDown) || force)
            {
                _up.Dispose();
                _up = new CancellationTokenSource();
                var listener = new TcpListener(Address, Port);
                listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                listener.Start();
                Port = ((IPEndPoint)listener.LocalEndpoint).Port;
                _listener = listener;
                _accepting = AcceptAsync(listener, _up.Token);
            }
        }
        finally
        {
            _switching.Release();
        }
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken down)
    {
        while (!down.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(down);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            var serving = ServeAsync(client, down);
            _connections.TryAdd(serving, 0);
            _ = serving.ContinueWith(t => _connections.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(TcpClient client, CancellationToken down)
    {
        await Task.Yield();
        tally.ConnectionOpened();
        try
        {
            using (client)
            {
                var stream = client.GetStream();
                var buffer = new byte[8192];
                var filled = 0;
                while (true)
                {
                    // Wait for a whole request head; while idle, going down closes the connection unanswered
                    // (the request was not counted, so a client retry on a new connection is harmless).
                    int headEnd;
                    while ((headEnd = IndexOfHeadEnd(buffer, filled)) < 0)
                    {
                        if (filled == buffer.Length)
                        {
                            return;
                        }

                        int read;
                        try
                        {
                            read = await stream.ReadAsync(buffer.AsMemory(filled), down);
                        }
                        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
                        {
                            return;
                        }

                        if (read == 0)
                        {
                            return;
                        }

                        filled += read;
                    }

                    var head = Encoding.ASCII.GetString(buffer, 0, headEnd);
                    filled -= headEnd + 4;
                    Buffer.BlockCopy(buffer, headEnd + 4, buffer, 0, filled);
                    tally.Arrived(HeaderValue(head, ChaosHeaders.RequestId));

                    var mode = _mode;
                    var path = head.Split(' ', 3) is { Length: 3 } parts ? parts[1] : "/";
                    var (answer, keepOpen) = mode switch
                    {
                        ChaosMode.Healthy => (Response("200 OK", "ok " + path, "Cache-Control: max-age=60\r\n"), true),
                        ChaosMode.GarbageStatusLine => (Garbage, false),
                        _ => (Response("503 Service Unavailable", "unavailable", string.Empty), mode != ChaosMode.Down),
                    };
                    try
                    {
                        await stream.WriteAsync(answer, CancellationToken.None); // a counted request is always answered
                    }
                    catch (Exception ex) when (ex is IOException or ObjectDisposedException)
                    {
                        return;
                    }

                    if (!keepOpen)
                    {
                        client.Client.Shutdown(SocketShutdown.Send);
                        return;
                    }
                }
            }
        }
        finally
        {
            tally.ConnectionClosed();
        }
    }

    private static byte[] Response(string status, string body, string extraHeaders) =>
        Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\n{extraHeaders}\r\n{body}");

    private static int IndexOfHeadEnd(byte[] buffer, int filled) => buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);

    private static string? HeaderValue(string head, string name)
    {
        foreach (var line in head.Split("\r\n"))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line.AsSpan(0, colon).Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return null;
    }
}

/// <summary>
/// A clock for the whole chaos run whose readings never go backwards and have sub-microsecond resolution, so that
/// the admissions and the registry's transitions can be ordered by time.
/// </summary>
internal sealed class MonotonicTimeProvider : TimeProvider
{
    private readonly DateTimeOffset _origin = DateTimeOffset.UtcNow;
    private readonly long _started = Stopwatch.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => _origin + Stopwatch.GetElapsedTime(_started);
}
