using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A real <c>redis-server</c> (Debian package redis-server) on a free loopback port, without persistence, that a test
/// can kill and start again on the same port. Skipped (or failed in CI) through <see cref="ServerBinary"/> when missing.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private readonly string _binary;
    private Process? _process;

    private RedisServer(string binary, int port)
    {
        _binary = binary;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Gets a StackExchange.Redis configuration string for the server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var server = new RedisServer(ServerBinary.Require("redis-server", "redis-server"), LoopbackPort.Free());
        await server.RestartAsync();
        return server;
    }

    /// <summary>Starts the server (again, after <see cref="KillAsync"/>) and returns once it accepts connections.</summary>
    public async Task RestartAsync()
    {
        var start = new ProcessStartInfo(_binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--port", $"{Port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--enable-debug-command", "local" })
        {
            start.ArgumentList.Add(argument);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException($"redis-server exited before it was ready:{Environment.NewLine}{string.Join(Environment.NewLine, output)}"));
                return;
            }

            output.Enqueue(e.Data);
            if (e.Data.Contains("Ready to accept connections", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// Makes the server stall for <paramref name="duration"/> (Redis's <c>DEBUG SLEEP</c>): it holds every connection
    /// open and answers nothing, as an overloaded Redis would. Returns once the command is sent; the returned task
    /// completes when the server answers again.
    /// </summary>
    public async Task<Task> StallAsync(TimeSpan duration)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port);
        var stream = client.GetStream();
        var seconds = duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"DEBUG SLEEP {seconds}\r\n"));
        await stream.FlushAsync();
        return AnsweredAsync(client);

        static async Task AnsweredAsync(TcpClient client)
        {
            using (client)
            {
                var reply = new byte[64];
                var read = await client.GetStream().ReadAsync(reply);
                var text = System.Text.Encoding.ASCII.GetString(reply, 0, read);
                if (!text.StartsWith("+OK", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"DEBUG SLEEP answered '{text.Trim()}'");
                }
            }
        }
    }

    /// <summary>Kills the server the hard way, as a crash or a network cut would look to its clients.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
    }
}
