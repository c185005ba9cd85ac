using CircuitBreaker.Http.Tests.TestSupport;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using static CircuitBreaker.Http.Tests.TestSupport.GrpcDownstream;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>
/// A gRPC client from Grpc.Net.ClientFactory (<c>AddGrpcClient&lt;T&gt;().AddCircuitBreaker()</c>) against a real gRPC
/// server on Kestrel over HTTP/2: what the breaker sees of gRPC calls, as README's "With gRPC" describes it.
/// </summary>
public class GrpcTests
{
    /// <summary>Only a guard against a hang: every awaited step completes in milliseconds when the library works.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task GrpcErrors_ArriveAsHttp200_AndAreNotCounted()
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "FailureThreshold": 1 } }""");
        var client = side.Services.GetRequiredService<EchoClient>();

        // Thrown at once, the status goes in a trailers-only response (grpc-status among the headers); thrown after an
        // await, in the trailers after the headers. Either way the HTTP status is 200.
        foreach (var code in new[] { StatusCode.Unavailable, StatusCode.Internal, StatusCode.DeadlineExceeded })
        {
            server.Unary = (_, _) => throw new RpcException(new Status(code, "down"));
            Assert.Equal(code, (await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync("x").ResponseAsync.WaitAsync(Guard))).StatusCode);
            server.Unary = async (_, _) =>
            {
                await Task.Yield();
                throw new RpcException(new Status(code, "down"));
            };
            Assert.Equal(code, (await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync("x").ResponseAsync.WaitAsync(Guard))).StatusCode);
        }

        var circuit = side.Circuit("users", Authority(server));
        Assert.Equal(CircuitState.Closed, circuit.State);
        Assert.Equal(0, circuit.ConsecutiveFailures);
    }

    [Fact]
    public async Task ConnectionRefused_IsSeenByTheBreaker_OnlyWithGrpcLoadBalancingOff()
    {
        var nobody = new Uri($"http://127.0.0.1:{LoopbackPort.Free()}/");
        var json = """{ "CircuitBreaker": { "FailureThreshold": 1 } }""";

        // With its default SocketsHttpHandler, the channel connects in its own subchannel, outside the handler pipeline,
        // and fails a call to a host that refuses connections before the call reaches the breaker.
        using (var side = Side(nobody, json))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => side.Services.GetRequiredService<EchoClient>().UnaryAsync("x").ResponseAsync.WaitAsync(Guard));
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.Empty(side.Registry.GetCircuits());
        }

        using (var side = Side(nobody, json, loadBalancing: false))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => side.Services.GetRequiredService<EchoClient>().UnaryAsync("x").ResponseAsync.WaitAsync(Guard));
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.IsType<HttpRequestException>(refused.Status.DebugException);
            Assert.Equal(CircuitState.Open, side.Circuit("users", nobody.GetLeftPart(UriPartial.Authority)).State);
        }
    }

    [Fact]
    public async Task OpenCircuit_ReachesTheGrpcCaller_AsRpcExceptionInternal_WithCircuitOpenExceptionInside()
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "FailureThreshold": 1 } }""");
        var client = side.Services.GetRequiredService<EchoClient>();
        Assert.Equal("a", await client.UnaryAsync("a").ResponseAsync.WaitAsync(Guard));
        side.Registry.Isolate(side.Circuit("users", Authority(server)).Key);

        // Grpc.Net.Client makes Unavailable only of a SocketException or IOException; any other failure to send is Internal.
        var rejected = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync("b").ResponseAsync.WaitAsync(Guard));
        Assert.Equal(StatusCode.Internal, rejected.StatusCode);
        Assert.IsType<CircuitOpenException>(rejected.Status.DebugException);
    }

    [Fact]
    public async Task DegradedFallback_ReachesTheGrpcCaller_AsUnavailable_NotAsAProtocolDowngrade()
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "Degraded": { "StatusCode": 503 } } } }""");
        var client = side.Services.GetRequiredService<EchoClient>();
        Assert.Equal("a", await client.UnaryAsync("a").ResponseAsync.WaitAsync(Guard));
        side.Registry.Isolate(side.Circuit("users", Authority(server)).Key);

        // gRPC refuses a response of another HTTP version than its request's as "Response protocol downgraded to
        // HTTP/1.1" (Internal) before it reads the status; a 503 of the right version is Unavailable, which it may retry.
        var degraded = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync("b").ResponseAsync.WaitAsync(Guard));
        Assert.Equal(StatusCode.Unavailable, degraded.StatusCode);
        Assert.Contains("503", degraded.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, "backup b")]
    [InlineData(true, "primary b")]
    public async Task AlternateBackend_AnswersTheGrpcCall_OnlyWithGrpcLoadBalancingOff(bool loadBalancing, string answer)
    {
        await using var server = await GrpcDownstream.StartAsync();
        await using var backup = await GrpcDownstream.StartAsync();
        backup.Unary = (request, _) => Task.FromResult("backup " + request);
        using var side = Side(server.BaseAddress, $$"""{ "CircuitBreaker": { "FailureThreshold": 1, "Fallback": { "AlternateBaseAddress": "{{backup.BaseAddress}}" } } }""", loadBalancing);
        var client = side.Services.GetRequiredService<EchoClient>();
        Assert.Equal("a", await client.UnaryAsync("a").ResponseAsync.WaitAsync(Guard));
        side.Registry.Isolate(side.Circuit("users", Authority(server)).Key);
        server.Unary = (request, _) => Task.FromResult("primary " + request);

        // With load balancing on, the channel's ConnectCallback connects to the address it picked for the call, whatever
        // host the request names: the call the breaker sends to the alternate reaches the isolated primary.
        using var call = client.UnaryAsync("b");
        Assert.Equal(answer, await call.ResponseAsync.WaitAsync(Guard));
        Assert.Equal("alternate", (await call.ResponseHeadersAsync).GetValue("x-circuit-fallback"));
    }

    [Fact]
    public async Task GrpcRetries_AboveTheBreaker_AreCountedEach_AndEndAtTheOpenCircuit()
    {
        var nobody = new Uri($"http://127.0.0.1:{LoopbackPort.Free()}/");
        using var side = ClientSide.Create(JsonConfiguration.From("""{ "CircuitBreaker": { "FailureThreshold": 2 } }"""), s => s
            .AddGrpcClient<EchoClient>("users", o => o.Address = nobody)
            .ConfigureChannel(o => o.ServiceConfig = new Grpc.Net.Client.Configuration.ServiceConfig
            {
                MethodConfigs =
                {
                    new Grpc.Net.Client.Configuration.MethodConfig
                    {
                        Names = { Grpc.Net.Client.Configuration.MethodName.Default },
                        RetryPolicy = new Grpc.Net.Client.Configuration.RetryPolicy
                        {
                            MaxAttempts = 5,
                            InitialBackoff = TimeSpan.FromMilliseconds(1),
                            MaxBackoff = TimeSpan.FromMilliseconds(1),
                            BackoffMultiplier = 1,
                            RetryableStatusCodes = { StatusCode.Unavailable },
                        },
                    },
                },
            })
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { Properties = { ["__GrpcLoadBalancingDisabled"] = true } })
            .AddCircuitBreaker());
        var client = side.Services.GetRequiredService<EchoClient>();

        // Two refused attempts (Unavailable, retried) open the circuit; the third is turned away (Internal, not retried).
        var failed = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync("x").ResponseAsync.WaitAsync(Guard));
        Assert.Equal(StatusCode.Internal, failed.StatusCode);
        Assert.IsType<CircuitOpenException>(failed.Status.DebugException);
        var circuit = side.Circuit("users", nobody.GetLeftPart(UriPartial.Authority));
        Assert.Equal(CircuitState.Open, circuit.State);
        Assert.Equal(2, circuit.ConsecutiveFailures);
    }

    [Fact]
    public async Task GrpcDeadline_IsTheCallersCancellation_AndIsNotCounted_WhileAttemptTimeoutIsCounted()
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "FailureThreshold": 1, "AttemptTimeout": "00:00:05" } }""");
        var client = side.Services.GetRequiredService<EchoClient>();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Unary = async (request, context) =>
        {
            arrived.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return request;
        };

        // The deadline runs on the real clock, whose expiry cancels the call's token: the breaker sees its caller cancel.
        var deadline = await Assert.ThrowsAsync<RpcException>(
            () => client.UnaryAsync("x", new CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(100))).ResponseAsync.WaitAsync(Guard));
        Assert.Equal(StatusCode.DeadlineExceeded, deadline.StatusCode);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", Authority(server)).State);

        arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var call = client.UnaryAsync("x").ResponseAsync;
        await arrived.Task.WaitAsync(Guard);
        side.Time.Advance(TimeSpan.FromSeconds(5));

        // gRPC reports any OperationCanceledException from the pipeline as Cancelled, with the breaker's message inside.
        var timedOut = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(Guard));
        Assert.Equal(StatusCode.Cancelled, timedOut.StatusCode);
        Assert.Contains("AttemptTimeout", Assert.IsType<OperationCanceledException>(timedOut.Status.DebugException, exactMatch: false).Message, StringComparison.Ordinal);
        Assert.Equal(CircuitState.Open, side.Circuit("users", Authority(server)).State);
    }

    [Theory]
    [InlineData("silent", false)]
    [InlineData("headers", true)]
    public async Task ServerStream_WhoseFirstMessageIsLaterThanAttemptTimeout_FailsAndCounts_UnlessItsHeadersAreSentFirst(string request, bool survives)
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "FailureThreshold": 1, "AttemptTimeout": "00:00:05" } }""");
        var client = side.Services.GetRequiredService<EchoClient>();

        using var stream = client.ServerStream(request);
        var headers = stream.ResponseHeadersAsync;
        await server.Service.StreamStarted.Task.WaitAsync(Guard);
        if (survives)
        {
            await headers.WaitAsync(Guard);
        }

        side.Time.Advance(TimeSpan.FromSeconds(5));

        if (survives)
        {
            Assert.Equal(CircuitState.Closed, side.Circuit("users", Authority(server)).State);
            Assert.Equal("b", await client.UnaryAsync("b").ResponseAsync.WaitAsync(Guard));
            Assert.False(stream.ResponseStream.MoveNext().IsCompleted);
        }
        else
        {
            // grpc-dotnet's server sends a stream's headers with its first message: until then, the call waits for its
            // headers, which is what AttemptTimeout bounds.
            var timedOut = await Assert.ThrowsAsync<RpcException>(() => stream.ResponseStream.MoveNext().WaitAsync(Guard));
            Assert.Equal(StatusCode.Cancelled, timedOut.StatusCode);
            Assert.Equal(CircuitState.Open, side.Circuit("users", Authority(server)).State);
        }
    }

    [Fact]
    public async Task DuplexStream_OutlivesTheHeaders_AndIsNotCancelledByLaterCallsThatReuseItsTimeout()
    {
        await using var server = await GrpcDownstream.StartAsync();
        using var side = Side(server, """{ "CircuitBreaker": { "MaxConcurrentRequests": 1 } }""");
        var client = side.Services.GetRequiredService<EchoClient>();
        using var duplex = client.Duplex();
        Assert.True(await duplex.ResponseStream.MoveNext().WaitAsync(Guard));
        Assert.Equal("ready", duplex.ResponseStream.Current);

        server.Unary = async (request, context) =>
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return request;
        };

        // Each call below takes a pooled AttemptTimeout (the stream gave its own back once its headers arrived) and the
        // bulkhead's only permit (which the stream holds no longer), and is cancelled by its caller once sent.
        for (var i = 0; i < 20; i++)
        {
            using var cts = new CancellationTokenSource();
            var call = client.UnaryAsync("x", new CallOptions(cancellationToken: cts.Token)).ResponseAsync;
            await cts.CancelAsync();
            Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(Guard))).StatusCode);

            await duplex.RequestStream.WriteAsync("m" + i).WaitAsync(Guard);
            Assert.True(await duplex.ResponseStream.MoveNext().WaitAsync(Guard));
            Assert.Equal("m" + i, duplex.ResponseStream.Current);
        }

        await duplex.RequestStream.CompleteAsync().WaitAsync(Guard);
        Assert.False(await duplex.ResponseStream.MoveNext().WaitAsync(Guard));
        Assert.Equal(StatusCode.OK, duplex.GetStatus().StatusCode);
    }

    private static string Authority(GrpcDownstream server) => server.BaseAddress.GetLeftPart(UriPartial.Authority);

    private static ClientSide Side(GrpcDownstream server, string json) => Side(server.BaseAddress, json);

    private static ClientSide Side(Uri address, string json, bool loadBalancing = true) =>
        ClientSide.Create(JsonConfiguration.From(json), s =>
        {
            var grpc = s.AddGrpcClient<EchoClient>("users", o => o.Address = address);
            if (!loadBalancing)
            {
                grpc.ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
                {
                    EnableMultipleHttp2Connections = true,
                    Properties = { ["__GrpcLoadBalancingDisabled"] = true },
                });
            }

            grpc.AddCircuitBreaker();
        });
}
