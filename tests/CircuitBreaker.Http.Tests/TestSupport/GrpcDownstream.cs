using System.Text;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A real gRPC server (Grpc.AspNetCore on Kestrel, HTTP/2 without TLS on 127.0.0.1) with one hand-written service,
/// <c>test.Echo</c>, whose unary answer a test scripts through <see cref="Unary"/>. No .proto: the messages are UTF-8 strings.
/// </summary>
internal sealed class GrpcDownstream : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcDownstream(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;

    public EchoService Service => _app.Services.GetRequiredService<EchoService>();

    /// <summary>What the unary method does; by default it echoes the request.</summary>
    public Func<string, ServerCallContext, Task<string>> Unary
    {
        get => Service.UnaryBehavior;
        set => Service.UnaryBehavior = value;
    }

    public static async Task<GrpcDownstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<EchoService>();
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        var server = new GrpcDownstream(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public static class Methods
    {
        private static readonly Marshaller<string> Text = Marshallers.Create(s => Encoding.UTF8.GetBytes(s), b => Encoding.UTF8.GetString(b));

        public static readonly Method<string, string> Unary = new(MethodType.Unary, "test.Echo", "Unary", Text, Text);
        public static readonly Method<string, string> ServerStream = new(MethodType.ServerStreaming, "test.Echo", "ServerStream", Text, Text);
        public static readonly Method<string, string> Duplex = new(MethodType.DuplexStreaming, "test.Echo", "Duplex", Text, Text);
    }

    /// <summary>The service's base, as codegen would write it: Grpc.AspNetCore finds the methods it binds as the overrides of its virtual methods.</summary>
    [BindServiceMethod(typeof(EchoServiceBase), nameof(BindService))]
    public abstract class EchoServiceBase
    {
        public static void BindService(ServiceBinderBase binder, EchoServiceBase? service)
        {
            binder.AddMethod(Methods.Unary, service is null ? null : service.Unary);
            binder.AddMethod(Methods.ServerStream, service is null ? null : service.ServerStream);
            binder.AddMethod(Methods.Duplex, service is null ? null : service.Duplex);
        }

        public virtual Task<string> Unary(string request, ServerCallContext context) => throw new RpcException(new Status(StatusCode.Unimplemented, ""));

        public virtual Task ServerStream(string request, IServerStreamWriter<string> responses, ServerCallContext context) => throw new RpcException(new Status(StatusCode.Unimplemented, ""));

        public virtual Task Duplex(IAsyncStreamReader<string> requests, IServerStreamWriter<string> responses, ServerCallContext context) => throw new RpcException(new Status(StatusCode.Unimplemented, ""));
    }

    public sealed class EchoService : EchoServiceBase
    {
        public Func<string, ServerCallContext, Task<string>> UnaryBehavior { get; set; } = (request, _) => Task.FromResult(request);

        public override Task<string> Unary(string request, ServerCallContext context) => UnaryBehavior(request, context);

        /// <summary>Completes when a server-streaming call has started, before it sends anything.</summary>
        public TaskCompletionSource StreamStarted { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>
        /// Keeps the stream open until the client goes. A subscription does not know when its first message comes: for
        /// "silent" it sends nothing, for "headers" only the response headers; otherwise the request back once.
        /// </summary>
        public override async Task ServerStream(string request, IServerStreamWriter<string> responses, ServerCallContext context)
        {
            if (request == "headers")
            {
                await context.WriteResponseHeadersAsync([]);
            }
            else if (request != "silent")
            {
                await responses.WriteAsync(request);
            }

            StreamStarted.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>Says "ready", then echoes every message until the client completes its side.</summary>
        public override async Task Duplex(IAsyncStreamReader<string> requests, IServerStreamWriter<string> responses, ServerCallContext context)
        {
            await responses.WriteAsync("ready");
            while (await requests.MoveNext(context.CancellationToken))
            {
                await responses.WriteAsync(requests.Current);
            }
        }
    }

    /// <summary>The client, as codegen would write it.</summary>
    public sealed class EchoClient : ClientBase<EchoClient>
    {
        public EchoClient(CallInvoker callInvoker)
            : base(callInvoker)
        {
        }

        private EchoClient(ClientBaseConfiguration configuration)
            : base(configuration)
        {
        }

        public AsyncUnaryCall<string> UnaryAsync(string request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(Methods.Unary, null, options, request);

        public AsyncServerStreamingCall<string> ServerStream(string request, CallOptions options = default) =>
            CallInvoker.AsyncServerStreamingCall(Methods.ServerStream, null, options, request);

        public AsyncDuplexStreamingCall<string, string> Duplex(CallOptions options = default) =>
            CallInvoker.AsyncDuplexStreamingCall(Methods.Duplex, null, options);

        protected override EchoClient NewInstance(ClientBaseConfiguration configuration) => new(configuration);
    }
}
