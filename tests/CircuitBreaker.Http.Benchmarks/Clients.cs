using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.CircuitBreaker;
using Polly.Fallback;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// Builds the named clients the benchmarks compare, all through <c>IHttpClientFactory</c> over one
/// <see cref="StubHandler"/>, with the factory's default pipeline (its logging handlers included) and no handler
/// rotation during a run.
/// </summary>
internal static class Clients
{
    /// <summary>A break no benchmark outlives: open circuits stay open for the whole run.</summary>
    public static readonly TimeSpan LongBreak = TimeSpan.FromHours(1);

    /// <summary>A named client over <paramref name="stub"/>, nothing else added.</summary>
    public static IHttpClientBuilder AddStubClient(this IServiceCollection services, string name, StubHandler stub) =>
        services.AddHttpClient(name)
            .ConfigurePrimaryHttpMessageHandler(() => stub)
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);

    /// <summary>Polly's circuit breaker as Microsoft.Extensions.Http.Resilience adds it, one pipeline per authority.</summary>
    public static void AddPollyCircuitBreaker(this IHttpClientBuilder builder, HttpCircuitBreakerStrategyOptions options) =>
        builder.AddResilienceHandler("cb", b => b.AddCircuitBreaker(options)).SelectPipelineByAuthority();

    /// <summary>The degraded body of the open-path benchmarks, the same for this library's fallback and Polly's.</summary>
    public const string DegradedBody = """{"user":null,"fallback":true}""";

    /// <summary>
    /// Polly's circuit behind Polly's own fallback strategy, as a Polly user who wants a degraded answer instead of
    /// <see cref="BrokenCircuitException"/> builds it: the rejection comes back as an outcome and is answered with the
    /// same 503, JSON body and <c>X-Circuit-Fallback: degraded</c> header as this library's degraded fallback (without its
    /// <c>Retry-After</c>), so that nothing is thrown on either side.
    /// </summary>
    public static void AddPollyCircuitBreakerWithFallback(this IHttpClientBuilder builder, HttpCircuitBreakerStrategyOptions options)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(DegradedBody);
        builder.AddResilienceHandler("cb", b => b
            .AddFallback(new FallbackStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception is BrokenCircuitException),
                FallbackAction = args =>
                {
                    var response = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)
                    {
                        RequestMessage = args.Context.GetRequestMessage(),
                        Content = new ByteArrayContent(body),
                    };
                    response.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                    response.Headers.TryAddWithoutValidation("X-Circuit-Fallback", "degraded");
                    return Outcome.FromResultAsValueTask(response);
                },
            })
            .AddCircuitBreaker(options))
            .SelectPipelineByAuthority();
    }

    /// <summary>Polly options that open after two failures and stay open for <see cref="LongBreak"/>.</summary>
    public static HttpCircuitBreakerStrategyOptions PollyOpensFast() => new()
    {
        MinimumThroughput = 2,
        FailureRatio = 0.5,
        BreakDuration = LongBreak,
    };

    /// <summary>Sends <paramref name="count"/> requests answered with 500, which opens a circuit, then sets the stub back to 200.</summary>
    public static async Task FailAsync(HttpClient client, StubHandler stub, Uri uri, int count)
    {
        stub.StatusCode = HttpStatusCode.InternalServerError;
        try
        {
            for (var i = 0; i < count; i++)
            {
                try
                {
                    using var response = await client.GetAsync(uri);
                }
                catch (HttpRequestException)
                {
                    // CircuitOpenException once the circuit opened
                }
                catch (BrokenCircuitException)
                {
                    // Polly, once its circuit opened
                }
            }
        }
        finally
        {
            stub.StatusCode = HttpStatusCode.OK;
        }
    }

    /// <summary>Fails setup when <paramref name="condition"/> is false: a benchmark must measure the path its name says.</summary>
    public static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Benchmark setup check failed: " + what);
        }
    }

    /// <summary>The state of the one circuit of <paramref name="clientName"/> for <paramref name="uri"/>.</summary>
    public static CircuitState StateOf(IServiceProvider services, string clientName, Uri uri)
    {
        var authority = $"{uri.Scheme}://{uri.Host}:{uri.Port}";
        var circuit = services.GetRequiredService<ICircuitBreakerRegistry>().GetCircuits()
            .SingleOrDefault(c => c.ClientName == clientName && string.Equals(c.Authority, authority, StringComparison.OrdinalIgnoreCase));
        return circuit?.State ?? throw new InvalidOperationException($"No circuit {clientName} {authority}");
    }
}
