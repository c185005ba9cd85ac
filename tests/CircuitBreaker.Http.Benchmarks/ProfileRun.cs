using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.CircuitBreaker;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// <c>-- profile [scenario] [count]</c>: sends <c>count</c> requests of one scenario on one thread, after a warm-up,
/// and prints the bytes allocated per request by the whole process (<see cref="GC.GetTotalAllocatedBytes"/>, precise; the asynchronous scenarios continue on other threads). Without a
/// scenario it prints every one. It is also the workload for instruction counts, which the shared machine cannot
/// disturb: run it under <c>valgrind --tool=callgrind</c> with two counts and divide the difference in instructions by
/// the difference in requests (see docs/benchmarks.md).
/// </summary>
internal static class ProfileRun
{
    private static readonly Uri Target = new("http://users.internal/users/42");

    private static readonly string[] Scenarios =
    [
        "bare", "cb", "cb-no-timeout", "polly",
        "bare-async", "cb-async", "polly-async",
        "cb-open-throw", "cb-open-degraded", "cb-open-cache", "polly-open-throw", "polly-open-fallback",
        "polly-timeout", "polly-timeout-async", "bare-loopback", "cb-loopback",
        "bare-many-hosts", "cb-many-hosts", "forward",
        "bare-no-client-timeout", "cb-no-client-timeout",
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
        foreach (var scenario in args.Length > 0 && args[0] != "all" ? args[..1] : Scenarios)
        {
            await using var server = scenario.EndsWith("-loopback", StringComparison.Ordinal) ? await LoopbackServer.StartAsync() : null;
            await using var services = await BuildAsync(scenario, server?.Address);
            var send = await SenderAsync(services, scenario);
            for (var i = 0; i < 2_000; i++)
            {
                await send();
            }

            var stopwatch = Stopwatch.StartNew();
            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < count; i++)
            {
                await send();
            }

            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"{scenario,-18} {allocated / (double)count,8:0.0} B/request  {stopwatch.Elapsed.TotalNanoseconds / count,8:0} ns/request (noisy)"));
        }

        return 0;
    }

    internal static async Task<ServiceProvider> BuildAsync(string scenario, Uri? server)
    {
        var stub = new StubHandler { Asynchronous = scenario.EndsWith("-async", StringComparison.Ordinal) };
        var services = new ServiceCollection();

        // Over loopback, the factory's own SocketsHttpHandler talks to a real Kestrel: the real network handler's
        // allocations, cancellation registrations included, instead of the stub's.
        var client = server is null
            ? services.AddStubClient("client", stub)
            : services.AddHttpClient("client", c => c.BaseAddress = server).SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        switch (scenario.Replace("-async", string.Empty, StringComparison.Ordinal).Replace("-loopback", string.Empty, StringComparison.Ordinal))
        {
            case "cb-many-hosts":
                client.AddCircuitBreaker(o => o.MaxCircuits = 2 * ManyHostsBenchmarks.Hosts);
                break;
            case "bare-many-hosts":
                break;
            case "bare-no-client-timeout":
                // HttpClient.Timeout off and no caller token: HttpClient passes its long-lived pending-requests token
                // down instead of a new linked source per request, so a registration on it reuses pooled nodes.
                client.ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan);
                break;
            case "cb-no-client-timeout":
                client.ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan).AddCircuitBreaker();
                break;
            case "forward":
                // The floor of any breaker built as a handler: one that only passes the call on.
                client.AddHttpMessageHandler(() => new ForwardingHandler());
                break;
            case "cb":
                client.AddCircuitBreaker();
                break;
            case "cb-no-timeout":
                client.AddCircuitBreaker(o => o.AttemptTimeout = Timeout.InfiniteTimeSpan);
                break;
            case "polly":
                client.AddPollyCircuitBreaker(new HttpCircuitBreakerStrategyOptions());
                break;
            case "polly-timeout":
                // Polly's closed circuit behind its own timeout strategy: what a timeout costs it.
                client.AddResilienceHandler("cb", b => b.AddTimeout(TimeSpan.FromSeconds(10)).AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions()))
                    .SelectPipelineByAuthority();
                break;
            case "polly-open-throw":
                client.AddPollyCircuitBreaker(Clients.PollyOpensFast());
                break;
            case "polly-open-fallback":
                // For reference: Polly's open circuit answered by Polly's own fallback strategy, nothing thrown.
                client.AddPollyCircuitBreakerWithFallback(Clients.PollyOpensFast());
                break;
            case "cb-open-throw":
                client.AddCircuitBreaker(o => o.BreakDuration = Clients.LongBreak);
                break;
            case "cb-open-degraded":
                client.AddCircuitBreaker(o =>
                {
                    o.BreakDuration = Clients.LongBreak;
                    o.Fallback.Degraded.StatusCode = 503;
                    o.Fallback.Degraded.ContentType = "application/json";
                    o.Fallback.Degraded.Body = Clients.DegradedBody;
                });
                break;
            case "cb-open-cache":
                client.AddCircuitBreaker(o =>
                {
                    o.BreakDuration = Clients.LongBreak;
                    o.Fallback.Cache.Enabled = true;
                    o.Fallback.Cache.MaxAge = Clients.LongBreak;
                });
                break;
            case "bare":
                break;
            default:
                throw new ArgumentException($"Unknown scenario '{scenario}'; one of: {string.Join(", ", Scenarios)}");
        }

        var provider = services.BuildServiceProvider();
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient("client");
        if (scenario.Contains("open", StringComparison.Ordinal))
        {
            stub.Body = Encoding.UTF8.GetBytes("""{"id":42,"name":"Ada"}""");
            _ = await http.GetStringAsync(Target);
            stub.Body = null;
            await Clients.FailAsync(http, stub, Target, 5);
            await CheckOpenAsync(provider, http, scenario);
        }

        return provider;
    }

    /// <summary>
    /// As <c>OpenPathBenchmarks</c>' setup: an open scenario measures an open circuit and the answer its name says, or
    /// fails, so that a paired or profiled round never times a closed call in its place.
    /// </summary>
    private static async Task CheckOpenAsync(ServiceProvider provider, HttpClient http, string scenario)
    {
        if (scenario.StartsWith("cb-open-", StringComparison.Ordinal))
        {
            Clients.Check(Clients.StateOf(provider, "client", Target) == CircuitState.Open, $"{scenario}: the circuit is open");
        }

        if (scenario.EndsWith("-throw", StringComparison.Ordinal))
        {
            return; // the sender itself fails unless each call is rejected with an exception
        }

        var expected = scenario.EndsWith("-cache", StringComparison.Ordinal) ? "cache" : "degraded";
        using var answer = await http.GetAsync(Target);
        Clients.Check(
            answer.Headers.TryGetValues("X-Circuit-Fallback", out var values) && values.FirstOrDefault() == expected,
            $"{scenario}: the {expected} fallback answers");
    }

    internal static async Task<Func<Task>> SenderAsync(IServiceProvider services, string scenario)
    {
        var http = services.GetRequiredService<IHttpClientFactory>().CreateClient("client");
        if (http.BaseAddress is { } server)
        {
            return async () =>
            {
                using var response = await http.GetAsync(server);
            };
        }

        if (scenario.EndsWith("many-hosts", StringComparison.Ordinal))
        {
            // As ManyHostsBenchmarks: round-robin over warm circuits (the warm-up's 2,000 calls are not enough to
            // create them, so they are created here), each host with a Uri of its own. The circuits are created by
            // Uris that die with their requests, as in an app, so that a lookup compares the host with a string of
            // the circuit's own rather than finding the very same string.
            for (var i = 0; i < ManyHostsBenchmarks.Hosts; i++)
            {
                using var response = await http.GetAsync(new Uri(ManyHostsBenchmarks.UriOf(i)));
            }

            var uris = Enumerable.Range(0, ManyHostsBenchmarks.Hosts).Select(i => new Uri(ManyHostsBenchmarks.UriOf(i))).ToArray();
            foreach (var uri in uris)
            {
                using var response = await http.GetAsync(uri);
            }

            var next = 0;
            return async () =>
            {
                var uri = uris[next];
                next = next + 1 == uris.Length ? 0 : next + 1;
                using var response = await http.GetAsync(uri);
            };
        }

        return scenario.Contains("throw", StringComparison.Ordinal)
            ? async () =>
            {
                try
                {
                    using var response = await http.GetAsync(Target);
                    throw new InvalidOperationException("The circuit should be open.");
                }
                catch (CircuitOpenException)
                {
                }
                catch (BrokenCircuitException)
                {
                }
            }
            : async () =>
            {
                using var response = await http.GetAsync(Target);
            };
    }
}

/// <summary>A handler that only passes each call on, for the <c>forward</c> scenario.</summary>
internal sealed class ForwardingHandler : DelegatingHandler
{
}
