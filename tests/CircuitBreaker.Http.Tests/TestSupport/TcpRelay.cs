using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A TCP relay on a loopback port in front of another loopback server, which a test can cut and restore: a network
/// fault between one client and the server, while the server itself (and its other clients) carries on.
/// </summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private readonly int _target;
    private readonly ConcurrentDictionary<TcpClient, byte> _connections = new();
    private TcpListener? _listener;
    private CancellationTokenSource? _accepting;

    private TcpRelay(int target, int port)
    {
        _target = target;
        Port = port;
    }

    public int Port { get; }

    public static TcpRelay Start(int target)
    {
        var relay = new TcpRelay(target, LoopbackPort.Free());
        relay.Restore();
        return relay;
    }

    /// <summary>Drops every connection through the relay and refuses new ones, until <see cref="Restore"/>.</summary>
    public void Cut()
    {
        _accepting?.Cancel();
        _listener?.Stop();
        _listener = null;
        foreach (var connection in _connections.Keys)
        {
            try
            {
                connection.Client?.LingerState = new LingerOption(true, 0); // a reset, as a cut network would look
            }
            catch (ObjectDisposedException)
            {
            }

            connection.Dispose();
        }

        _connections.Clear();
    }

    /// <summary>Accepts connections again.</summary>
    public void Restore()
    {
        var listener = new TcpListener(IPAddress.Loopback, Port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        _listener = listener;
        _accepting = new CancellationTokenSource();
        _ = AcceptAsync(listener, _accepting.Token);
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var inbound = await listener.AcceptTcpClientAsync(cancellationToken);
                var outbound = new TcpClient();
                await outbound.ConnectAsync(IPAddress.Loopback, _target, cancellationToken);
                _connections[inbound] = 0;
                _connections[outbound] = 0;
                _ = PumpAsync(inbound, outbound);
                _ = PumpAsync(outbound, inbound);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
