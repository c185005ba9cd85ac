using System.Diagnostics;
using System.Net;
using System.Text;
using CircuitBreaker.Http.Tests.Integration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RichardSzalay.MockHttp;
using Xunit.Abstractions;

namespace CircuitBreaker.Http.Tests.Reliability;

/// <summary>
/// Bad input of every kind: each option key with each kind of wrong value (out of range, zero where not
/// allowed, the wrong JSON type, unknown keys at every level) must stop the host at start-up with a message
/// that names the key and the rule, never be replaced by a default; odd request URIs must get a sensible
/// circuit or a clear error; a flood of distinct hosts must not grow the registry or forget open circuits.
/// </summary>
public sealed class BadInputTests
{
    // ---------------------------------------------------------------------------------------------------------
    // Options: each key × its wrong values, at start-up
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// (JSON inside the <c>CircuitBreaker</c> section, the key the message must name, the rule it must state).
    /// Keys are compared with ':' and '.' taken as the same separator.
    /// </summary>
    public static TheoryData<string, string, string> InvalidOptions => new()
    {
        { """ "FailureThreshold": -1 """, "CircuitBreaker:FailureThreshold", "between" },
        { """ "FailureThreshold": "five" """, "CircuitBreaker:FailureThreshold", "to type 'System.Int32'" },
        { """ "FailureThreshold": 1.5 """, "CircuitBreaker:FailureThreshold", "to type 'System.Int32'" },
        { """ "FailureThreshold": "" """, "CircuitBreaker:FailureThreshold", "not null or empty" },
        { """ "FailureThreshold": 3000000000 """, "CircuitBreaker:FailureThreshold", "to type 'System.Int32'" },
        { """ "FailureRatio": -0.1 """, "CircuitBreaker:FailureRatio", "between" },
        { """ "FailureRatio": 1.5 """, "CircuitBreaker:FailureRatio", "between" },
        { """ "FailureRatio": "NaN" """, "CircuitBreaker:FailureRatio", "between" },
        { """ "FailureRatio": "half" """, "CircuitBreaker:FailureRatio", "to type 'System.Double'" },
        { """ "MinimumThroughput": 0 """, "CircuitBreaker:MinimumThroughput", "between" },
        { """ "MinimumThroughput": -5 """, "CircuitBreaker:MinimumThroughput", "between" },
        { """ "MinimumThroughput": null """, "CircuitBreaker:MinimumThroughput", "not null" },
        { """ "SamplingDuration": "00:00:00" """, "CircuitBreaker:SamplingDuration", "between" },
        { """ "SamplingDuration": "-00:00:01" """, "CircuitBreaker:SamplingDuration", "between" },
        { """ "SamplingDuration": "2.00:00:00" """, "CircuitBreaker:SamplingDuration", "between" },
        { """ "SamplingDuration": "soon" """, "CircuitBreaker:SamplingDuration", "to type 'System.TimeSpan'" },
        { """ "BreakDuration": "00:00:00" """, "CircuitBreaker:BreakDuration", "between" },
        { """ "BreakDuration": "-00:00:30" """, "CircuitBreaker:BreakDuration", "between" },
        { """ "BreakDuration": 5 """, "CircuitBreaker:BreakDuration", "to type 'System.TimeSpan'" }, // a bare number would be read as days
        { """ "BreakDuration": 0.5 """, "CircuitBreaker:BreakDuration", "to type 'System.TimeSpan'" },
        { """ "BreakDuration": "30s" """, "CircuitBreaker:BreakDuration", "to type 'System.TimeSpan'" },
        { """ "BreakDuration": null """, "CircuitBreaker:BreakDuration", "not null" },
        { """ "BreakDurationMultiplier": 0.5 """, "CircuitBreaker:BreakDurationMultiplier", "between" },
        { """ "BreakDurationMultiplier": 0 """, "CircuitBreaker:BreakDurationMultiplier", "between" },
        { """ "BreakDurationMultiplier": 1001 """, "CircuitBreaker:BreakDurationMultiplier", "between" },
        { """ "BreakDurationMultiplier": "NaN" """, "CircuitBreaker:BreakDurationMultiplier", "between" },
        { """ "BreakDurationMultiplier": "double" """, "CircuitBreaker:BreakDurationMultiplier", "to type 'System.Double'" },
        { """ "MaxBreakDuration": "00:00:00" """, "CircuitBreaker:MaxBreakDuration", "between" },
        { """ "MaxBreakDuration": "-00:05:00" """, "CircuitBreaker:MaxBreakDuration", "between" },
        { """ "MaxBreakDuration": "2.00:00:00" """, "CircuitBreaker:MaxBreakDuration", "between" },
        { """ "BreakDurationJitter": -0.1 """, "CircuitBreaker:BreakDurationJitter", "between" },
        { """ "BreakDurationJitter": 1 """, "CircuitBreaker:BreakDurationJitter", "between" },
        { """ "BreakDurationJitter": "some" """, "CircuitBreaker:BreakDurationJitter", "to type 'System.Double'" },
        { """ "HonorRetryAfter": "sometimes" """, "CircuitBreaker:HonorRetryAfter", "to type 'System.Boolean'" },
        { """ "HalfOpenProbes": 0 """, "CircuitBreaker:HalfOpenProbes", "between" },
        { """ "HalfOpenProbes": -1 """, "CircuitBreaker:HalfOpenProbes", "between" },
        { """ "HalfOpenProbes": 1001 """, "CircuitBreaker:HalfOpenProbes", "between" },
        { """ "HalfOpenProbes": "one" """, "CircuitBreaker:HalfOpenProbes", "to type 'System.Int32'" },
        { """ "HalfOpenProbes": null """, "CircuitBreaker:HalfOpenProbes", "not null" },
        { """ "AttemptTimeout": "00:00:00" """, "CircuitBreaker:AttemptTimeout", "positive duration" },
        { """ "AttemptTimeout": "-00:00:02" """, "CircuitBreaker:AttemptTimeout", "positive duration" },
        { """ "AttemptTimeout": "60.00:00:00" """, "CircuitBreaker:AttemptTimeout", "at most 49.17:02:47.2940000" },
        { """ "AttemptTimeout": "never" """, "CircuitBreaker:AttemptTimeout", "to type 'System.TimeSpan'" },
        { """ "SlowCallDuration": "00:00:00" """, "CircuitBreaker:SlowCallDuration", "positive duration" },
        { """ "SlowCallDuration": "-00:00:05" """, "CircuitBreaker:SlowCallDuration", "positive duration" },
        { """ "FailureStatusCodes": "" """, "CircuitBreaker:FailureStatusCodes", "required" },
        { """ "FailureStatusCodes": null """, "CircuitBreaker:FailureStatusCodes", "required" },
        { """ "FailureStatusCodes": "700" """, "CircuitBreaker:FailureStatusCodes", "is not a status code (100-599)" },
        { """ "FailureStatusCodes": "5xx,abc" """, "CircuitBreaker:FailureStatusCodes", "is not a status code (100-599)" },
        { """ "MaxCircuits": 0 """, "CircuitBreaker:MaxCircuits", "between" },
        { """ "MaxCircuits": -1 """, "CircuitBreaker:MaxCircuits", "between" },
        { """ "MaxCircuits": 10000001 """, "CircuitBreaker:MaxCircuits", "between" },
        { """ "MaxCircuits": "many" """, "CircuitBreaker:MaxCircuits", "to type 'System.Int32'" },
        { """ "Enforce": "maybe" """, "CircuitBreaker:Enforce", "to type 'System.Boolean'" },
        { """ "MaxConcurrentRequests": 0 """, "CircuitBreaker:MaxConcurrentRequests", "between" },
        { """ "MaxConcurrentRequests": "lots" """, "CircuitBreaker:MaxConcurrentRequests", "to type 'System.Int32'" },
        { """ "MaxQueuedRequests": -1 """, "CircuitBreaker:MaxQueuedRequests", "between" },
        { """ "MaxQueuedRequests": 5 """, "CircuitBreaker:MaxQueuedRequests", "needs MaxConcurrentRequests" },
        { """ "Throttle": { "PermitsPerSecond": 0 } """, "CircuitBreaker:Throttle:PermitsPerSecond", "between" },
        { """ "Throttle": { "PermitsPerSecond": "fast" } """, "CircuitBreaker:Throttle:PermitsPerSecond", "to type 'System.Double'" },
        { """ "Throttle": { "PermitsPerSecond": 10, "Burst": 0 } """, "CircuitBreaker:Throttle:Burst", "between" },
        { """ "Throttle": { "Burst": 5 } """, "CircuitBreaker:Throttle:Burst", "needs Throttle:PermitsPerSecond" },
        { """ "Throttle": { "Rate": 5 } """, "CircuitBreaker:Throttle:Rate", "unknown configuration key" },
        { """ "RampUpDuration": "00:00:00" """, "CircuitBreaker:RampUpDuration", "positive duration" },
        { """ "RampUpDuration": "-00:00:01" """, "CircuitBreaker:RampUpDuration", "positive duration" },

        // Unknown keys, at every level.
        { """ "FailureTreshold": 3 """, "CircuitBreaker:FailureTreshold", "unknown configuration key" },
        { """ "Clients": { "users": { "BreakDurration": "00:00:10" } } """, "CircuitBreaker:Clients:users:BreakDurration", "unknown configuration key" },
        { """ "Hosts": { "users.internal": { "Typo": 1 } } """, "CircuitBreaker:Hosts:users.internal:Typo", "unknown configuration key" },
        { """ "Hosts": { "users.internal": { "MaxCircuits": 5 } } """, "CircuitBreaker:Hosts:users.internal:MaxCircuits", "unknown configuration key" },
        { """ "Clients": { "users": { "Hosts": { "users.internal": { "Typo": 1 } } } } """, "CircuitBreaker:Clients:users:Hosts:users.internal:Typo", "unknown configuration key" },
        { """ "Clients": { "users": { "Clients": { "x": { } } } } """, "CircuitBreaker:Clients:users:Clients", "unknown configuration key" },
        { """ "Fallback": { "Typo": 1 } """, "CircuitBreaker:Fallback:Typo", "unknown configuration key" },
        { """ "Fallback": { "OnOpen": "x" } """, "CircuitBreaker:Fallback:OnOpen", "unknown configuration key" },
        { """ "Fallback": { "Cache": { "Enabeld": true } } """, "CircuitBreaker:Fallback:Cache:Enabeld", "unknown configuration key" },
        { """ "Fallback": { "Degraded": { "Status": 503 } } """, "CircuitBreaker:Fallback:Degraded:Status", "unknown configuration key" },
        { """ "Hosts": { "users.internal": { "Fallback": { "Typo": 1 } } } """, "CircuitBreaker:Hosts:users.internal:Fallback:Typo", "unknown configuration key" },
        { """ "Hosts": { "users.internal": { "Fallback": { "Cache": { "MaxEntries": 5 } } } } """, "CircuitBreaker:Hosts:users.internal:Fallback:Cache:MaxEntries", "unknown configuration key" },
        { """ "Hosts": { "users.internal": { "Fallback": { "Degraded": { "Typo": 1 } } } } """, "CircuitBreaker:Hosts:users.internal:Fallback:Degraded:Typo", "unknown configuration key" },

        // Fallback values.
        { """ "Fallback": { "Cache": { "Enabled": "yes" } } """, "CircuitBreaker:Fallback:Cache:Enabled", "to type 'System.Boolean'" },
        { """ "Fallback": { "Cache": { "MaxAge": "00:00:00" } } """, "CircuitBreaker:Fallback:Cache:MaxAge", "between" },
        { """ "Fallback": { "Cache": { "MaxAge": "400.00:00:00" } } """, "CircuitBreaker:Fallback:Cache:MaxAge", "between" },
        { """ "Fallback": { "Cache": { "MaxEntries": 0 } } """, "CircuitBreaker:Fallback:Cache:MaxEntries", "between" },
        { """ "Fallback": { "Cache": { "MaxEntryBytes": 0 } } """, "CircuitBreaker:Fallback:Cache:MaxEntryBytes", "between" },
        { """ "Fallback": { "Cache": { "MaxTotalBytes": -1 } } """, "CircuitBreaker:Fallback:Cache:MaxTotalBytes", "between" },
        { """ "Fallback": { "AlternateBaseAddress": "ftp://backup.internal" } """, "CircuitBreaker:Fallback:AlternateBaseAddress", "absolute http or https address" },
        { """ "Fallback": { "AlternateBaseAddress": "/relative" } """, "CircuitBreaker:Fallback:AlternateBaseAddress", "absolute http or https address" },
        { """ "Fallback": { "AlternateBaseAddress": "not a uri" } """, "CircuitBreaker:Fallback:AlternateBaseAddress", "absolute http or https address" },
        { """ "Fallback": { "Degraded": { "StatusCode": 99 } } """, "CircuitBreaker:Fallback:Degraded:StatusCode", "between" },
        { """ "Fallback": { "Degraded": { "StatusCode": 600 } } """, "CircuitBreaker:Fallback:Degraded:StatusCode", "between" },
        { """ "Fallback": { "Degraded": { "StatusCode": "ok" } } """, "CircuitBreaker:Fallback:Degraded:StatusCode", "to type 'System.Int32'" },
        { """ "Fallback": { "Degraded": { "Body": "{}" } } """, "CircuitBreaker:Fallback:Degraded:ContentType", "needs a ContentType" },
        { """ "Fallback": { "Degraded": { "Body": "{}", "ContentType": "json please" } } """, "CircuitBreaker:Fallback:Degraded:ContentType", "is not a media type" },
        { """ "Fallback": { "Degraded": { "StatusCode": 503, "Headers": { "Bad Header": "x" } } } """, "CircuitBreaker:Fallback:Degraded:Headers", "cannot be set on a response" },

        // Per host and per client.
        { """ "Hosts": { "users.internal": { "FailureThreshold": -1 } } """, "CircuitBreaker:Hosts:users.internal:FailureThreshold", "between" },
        { """ "Hosts": { "users.internal": { "Fallback": { "Degraded": { "StatusCode": 700 } } } } """, "CircuitBreaker:Hosts:users.internal:Fallback:Degraded:StatusCode", "between" },
        { """ "Hosts": { "https://users.internal": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts:https://users.internal", "unknown configuration key" }, // ':' splits the key
        { """ "Hosts": { "::1": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'::1' is an IPv6 address" },
        { """ "Hosts": { "2001:4860:4860::8888": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'2001:4860:4860::8888' is an IPv6 address" },
        { """ "Hosts": { "[::1]:8443": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'[::1]:8443' is an IPv6 address" },
        { """ "Hosts": { "users.internal:8443": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'users.internal:8443' cannot include a port" },
        { """ "Hosts": { "10.0.0.1:8443": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'10.0.0.1:8443' cannot include a port" },
        { """ "Hosts": { "10.0.0.1": { "Typo": 1 } } """, "CircuitBreaker:Hosts:10.0.0.1:Typo", "unknown configuration key" },
        { """ "Hosts": { "fd00::1": { "FailureThreshold": 1 }, "fd00::2": { "FailureThreshold": 1 } } """, "CircuitBreaker:Hosts", "'fd00::2' is an IPv6 address" }, // two keys split alike
        { """ "Clients": { "users": { "Hosts": { "fe80::1": { "Enforce": false } } } } """, "CircuitBreaker:Clients:users:Hosts", "'fe80::1' is an IPv6 address" },
        { """ "Clients": { "users": { "HalfOpenProbes": 0 } } """, "CircuitBreaker:HalfOpenProbes", "between" },
        { """ "Clients": { "users": { "FailureRatio": "most" } } """, "CircuitBreaker:Clients:users:FailureRatio", "to type 'System.Double'" },
        { """ "Clients": { "users": { "Hosts": { "users.internal": { "HalfOpenProbes": 0 } } } } """, "CircuitBreaker:Hosts:users.internal:HalfOpenProbes", "between" },
    };

    /// <summary>
    /// Wrong values the library accepts today, each silently turned into something the JSON does not say (a
    /// default, zero, or days instead of seconds). They must fail at start-up like the rows above.
    /// </summary>
    public static TheoryData<string, string, string> InvalidOptionsAcceptedSilently => new()
    {
        // A JSON null for a non-nullable value becomes default(T): the trigger is off, the breaker observes only.
        { """ "FailureThreshold": null """, "CircuitBreaker:FailureThreshold", "null" },
        { """ "Enforce": null """, "CircuitBreaker:Enforce", "null" },
        { """ "HonorRetryAfter": null """, "CircuitBreaker:HonorRetryAfter", "null" },

        // An array or object where a single value is expected is ignored: the default stays.
        { """ "FailureThreshold": [1, 2] """, "CircuitBreaker:FailureThreshold", "single value" },
        { """ "FailureThreshold": { "Value": 1 } """, "CircuitBreaker:FailureThreshold", "single value" },
        { """ "FailureStatusCodes": [500, 503] """, "CircuitBreaker:FailureStatusCodes", "single value" },
        { """ "BreakDuration": { "Seconds": 5 } """, "CircuitBreaker:BreakDuration", "single value" },
        { """ "Fallback": { "Degraded": { "StatusCode": 503, "Headers": { "X-Degraded": ["a", "b"] } } } """, "CircuitBreaker:Fallback:Degraded:Headers:X-Degraded", "single value" },

        // A single value where an object is expected is ignored.
        { """ "Fallback": "cache" """, "CircuitBreaker:Fallback", "object" },
        { """ "Hosts": "users.internal" """, "CircuitBreaker:Hosts", "object" },
        { """ "Hosts": { "users.internal": 1 } """, "CircuitBreaker:Hosts:users.internal", "object" },
        { """ "Clients": { "users": 1 } """, "CircuitBreaker:Clients:users", "object" },
        { """ "Throttle": 100 """, "CircuitBreaker:Throttle", "object" },

        // A value that cannot be converted inside a host override drops the whole override, silently.
        { """ "Hosts": { "users.internal": { "BreakDuration": "sometime" } } """, "CircuitBreaker:Hosts:users.internal:BreakDuration", "to type 'System.TimeSpan'" },
        { """ "Hosts": { "users.internal": { "FailureThreshold": "x" } } """, "CircuitBreaker:Hosts:users.internal:FailureThreshold", "to type 'System.Int32'" },
        { """ "Clients": { "users": { "Hosts": { "users.internal": { "Enforce": "no" } } } } """, "CircuitBreaker:Clients:users:Hosts:users.internal:Enforce", "to type 'System.Boolean'" },

        // A list with no status code in it: nothing counts as a failure.
        { """ "FailureStatusCodes": "," """, "CircuitBreaker:FailureStatusCodes", "at least one status code" },

        // A number where a duration is expected is read as days (TimeSpan's "d" format).
        { """ "BreakDuration": 1 """, "CircuitBreaker:BreakDuration", "duration" },
        { """ "AttemptTimeout": 5 """, "CircuitBreaker:AttemptTimeout", "duration" },
        { """ "SlowCallDuration": 2 """, "CircuitBreaker:SlowCallDuration", "duration" },
        { """ "RampUpDuration": 30 """, "CircuitBreaker:RampUpDuration", "duration" },
        { """ "Fallback": { "Cache": { "MaxAge": 30 } } """, "CircuitBreaker:Fallback:Cache:MaxAge", "duration" },
        { """ "Hosts": { "users.internal": { "AttemptTimeout": 30 } } """, "CircuitBreaker:Hosts:users.internal:AttemptTimeout", "duration" },

        // A null or empty value in a host override keeps the client's value: the 10 s timeout stays for a host whose
        // override says null, which for the client turns it off.
        { """ "Hosts": { "users.internal": { "AttemptTimeout": null } } """, "CircuitBreaker:Hosts:users.internal:AttemptTimeout", "-00:00:00.001" },
        { """ "Hosts": { "users.internal": { "SlowCallDuration": "" } } """, "CircuitBreaker:Hosts:users.internal:SlowCallDuration", "-00:00:00.001" },
        { """ "Hosts": { "users.internal": { "MaxConcurrentRequests": null } } """, "CircuitBreaker:Hosts:users.internal:MaxConcurrentRequests", "remove the key" },
        { """ "Hosts": { "users.internal": { "RampUpDuration": null } } """, "CircuitBreaker:Hosts:users.internal:RampUpDuration", "remove the key" },
        { """ "Hosts": { "users.internal": { "Throttle": { "PermitsPerSecond": null } } } """, "CircuitBreaker:Hosts:users.internal:Throttle:PermitsPerSecond", "remove the key" },
        { """ "Clients": { "users": { "Hosts": { "users.internal": { "AttemptTimeout": null } } } } """, "CircuitBreaker:Clients:users:Hosts:users.internal:AttemptTimeout", "-00:00:00.001" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public async Task InvalidOption_FailsAtStartUp_NamingTheKeyAndTheRule(string json, string key, string rule)
    {
        var failure = await StartAsync(json);

        Assert.True(failure is not null, $"the host started with {json}");
        var message = Normalize(failure.Message);
        Assert.Contains(Normalize(key), message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(rule, failure.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [MemberData(nameof(InvalidOptionsAcceptedSilently))]
    public async Task InvalidOption_OnceAcceptedSilently_FailsAtStartUp(string json, string key, string rule)
    {
        var failure = await StartAsync(json);

        Assert.True(failure is not null, $"the host started with {json}");
        Assert.Contains(Normalize(key), Normalize(failure.Message), StringComparison.OrdinalIgnoreCase);
        Assert.Contains(rule, failure.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ValidOptions_Start()
    {
        var failure = await StartAsync("""
            "FailureThreshold": 0, "FailureRatio": 0.5, "AttemptTimeout": null, "SlowCallDuration": "00:00:02", "FailureStatusCodes": "5xx,408,429", "BreakDuration": "1.00:00:00",
            "Hosts": { "bücher.example": { "FailureThreshold": 2 }, "10.0.0.1": { "BreakDuration": "00:00:05" } },
            "Fallback": { "Degraded": { "Body": "{}", "ContentType": "application/json", "Headers": { "X-Degraded": "1" } } }
            """);

        Assert.Null(failure);
    }

    [Theory]
    [InlineData("false")]
    [InlineData("5")]
    [InlineData("\"on\"")]
    public async Task SectionWrittenAsASingleValue_FailsAtStartUp_NamingTheSection(string value)
    {
        // Bound as it was, the breaker ran with every default and no word about the value.
        var failure = await StartWithJsonAsync($$"""{ "CircuitBreaker": {{value}} }""", s => s.AddHttpClient("users").AddCircuitBreaker());

        Assert.True(failure is not null, $"the host started with \"CircuitBreaker\": {value}");
        Assert.Contains("CircuitBreaker: expects an object of keys", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SectionGivenToAddCircuitBreakerWrittenAsASingleValue_FailsAtStartUp_NamingTheSection()
    {
        var failure = await StartWithJsonAsync(
            """{ "Breakers": { "Users": false } }""",
            (s, configuration) => s.AddHttpClient("users").AddCircuitBreaker(configuration.GetSection("Breakers:Users")));

        Assert.True(failure is not null, "the host started with a section that holds a single value");
        Assert.Contains("Breakers:Users: expects an object of keys", failure.Message, StringComparison.Ordinal);
    }

    private static string Normalize(string text) => text.Replace(':', '.');

    /// <summary>Starts a host whose appsettings.json has <paramref name="section"/> as its CircuitBreaker section; returns why it failed, or null.</summary>
    private static Task<Exception?> StartAsync(string section) =>
        StartWithJsonAsync($$"""{ "CircuitBreaker": { {{section}} } }""", s => s.AddHttpClient("users").AddCircuitBreaker());

    private static Task<Exception?> StartWithJsonAsync(string json, Action<IServiceCollection> register) =>
        StartWithJsonAsync(json, (services, _) => register(services));

    /// <summary>Starts a host whose appsettings.json is <paramref name="json"/>; returns why it failed, or null.</summary>
    private static async Task<Exception?> StartWithJsonAsync(string json, Action<IServiceCollection, IConfiguration> register)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        register(builder.Services, builder.Configuration);
        using var host = builder.Build();
        try
        {
            await host.StartAsync();
            await host.StopAsync();
            return null;
        }
        catch (OptionsValidationException ex)
        {
            return ex;
        }
        catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is OptionsValidationException))
        {
            return ex;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Odd request URIs
    // ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task RequestWithoutUri_FailsClearly_AndCreatesNoCircuit()
    {
        using var harness = new TestSupport.BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var invoker = new HttpMessageInvoker(harness.Services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler(TestSupport.BreakerHarness.ClientName));
        using var client = harness.CreateClient();

        // Through HttpClient, which refuses it itself; and straight into the handler chain, where the breaker does.
        using var viaClient = new HttpRequestMessage(HttpMethod.Get, (Uri?)null);
        var fromClient = await Assert.ThrowsAsync<InvalidOperationException>(() => client.SendAsync(viaClient));
        using var viaHandler = new HttpRequestMessage(HttpMethod.Get, (Uri?)null);
        var fromHandler = await Assert.ThrowsAsync<InvalidOperationException>(() => invoker.SendAsync(viaHandler, CancellationToken.None));

        Assert.Contains("URI", fromClient.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("RequestUri", fromHandler.Message, StringComparison.Ordinal);
        Assert.Empty(harness.Registry.GetCircuits());
    }

    [Fact]
    public async Task RelativeUriWithoutBaseAddress_FailsClearly_AndCreatesNoCircuit()
    {
        using var harness = new TestSupport.BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var invoker = new HttpMessageInvoker(harness.Services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler(TestSupport.BreakerHarness.ClientName));
        using var client = harness.CreateClient();

        var fromClient = await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetAsync("users/1"));
        using var relative = new HttpRequestMessage(HttpMethod.Get, new Uri("users/1", UriKind.Relative));
        var fromHandler = await Assert.ThrowsAsync<InvalidOperationException>(() => invoker.SendAsync(relative, CancellationToken.None));

        Assert.Contains("BaseAddress", fromClient.Message, StringComparison.Ordinal);
        Assert.Contains("absolute", fromHandler.Message, StringComparison.Ordinal);
        Assert.Empty(harness.Registry.GetCircuits());
    }

    [Theory]
    [InlineData("http://[::1]:8080/x", "http://[::1]:8080")]
    [InlineData("http://[0:0:0:0:0:0:0:1]:8080/x", "http://[::1]:8080")]
    [InlineData("https://[2001:DB8::1]/x", "https://[2001:db8::1]:443")]
    [InlineData("http://[fe80::1%25eth0]:81/x", "http://[fe80::1%25eth0]:81")]
    [InlineData("http://bücher.example/x", "http://xn--bcher-kva.example:80")]
    [InlineData("http://BÜCHER.Example:80/x", "http://xn--bcher-kva.example:80")]
    [InlineData("http://xn--bcher-kva.example/x", "http://xn--bcher-kva.example:80")]
    [InlineData("http://user:secret@users.internal/x", "http://users.internal:80")]
    [InlineData("HTTP://Users.Internal:80/x", "http://users.internal:80")]
    [InlineData("https://users.internal/x", "https://users.internal:443")]
    [InlineData("http://127.0.0.1:5000/x", "http://127.0.0.1:5000")]
    public async Task OddAuthority_GetsASensibleCircuitKey_ThatTheRegistryAcceptsBack(string uri, string expectedAuthority)
    {
        using var harness = new TestSupport.BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri(uri));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var circuit = Assert.Single(harness.Registry.GetCircuits());
        Assert.Equal(expectedAuthority, circuit.Authority, ignoreCase: true);
        Assert.DoesNotContain("secret", circuit.Authority, StringComparison.Ordinal);

        // The key the registry lists is one an operator can hand back to it.
        harness.Registry.Isolate(circuit.Key);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri(uri)));
        Assert.True(harness.Registry.Reset(circuit.Key));
        using var again = await client.GetAsync(new Uri(uri));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Single(harness.Registry.GetCircuits());
    }

    [Fact]
    public async Task LongestHostNames_Work_EachWithItsOwnCircuit()
    {
        using var harness = new TestSupport.BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        var label = new string('a', 63);

        // 253 characters, the longest DNS name: four labels of 63, 61 and 63 characters.
        var longest = $"{label}.{label}.{new string('b', 61)}.{label}";
        var sibling = $"{label}.{label}.{new string('c', 61)}.{label}";
        Assert.Equal(253, longest.Length);
        using (var first = await client.GetAsync(new Uri($"http://{longest}/x")))
        using (var second = await client.GetAsync(new Uri($"http://{sibling.ToUpperInvariant()}:8080/x")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        Assert.Equal(
            [$"http://{longest}:80", $"http://{sibling}:8080"],
            harness.Registry.GetCircuits().Select(c => c.Authority).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task HostNamesLongerThanDnsAllows_StillGetACircuitEach_NotTruncatedIntoOne()
    {
        // System.Uri has no length limit of its own; the request fails at DNS, but the breaker must not mix hosts up.
        using var harness = new TestSupport.BreakerHarness();
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        var common = string.Join('.', Enumerable.Repeat(new string('a', 63), 16));
        using (await client.GetAsync(new Uri($"http://{common}.one/x")))
        using (await client.GetAsync(new Uri($"http://{common}.two/x")))
        {
        }

        Assert.Equal(2, harness.Registry.GetCircuits().Count);
        Assert.All(harness.Registry.GetCircuits(), c => Assert.StartsWith($"http://{common}.", c.Authority, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bücher.example")]
    [InlineData("xn--bcher-kva.example")]
    public async Task HostOverride_ForAnIdnHost_AppliesWhicheverWayItIsWritten(string writtenAs)
    {
        using var harness = new TestSupport.BreakerHarness(o =>
        {
            o.FailureThreshold = 5;
            o.Hosts[writtenAs] = new CircuitBreakerHostOptions { FailureThreshold = 1 };
        });
        harness.Mock.When("*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        using (await client.GetAsync(new Uri("http://bücher.example/x")))
        {
        }

        Assert.Equal(CircuitState.Open, harness.Circuit("http://xn--bcher-kva.example:80").State);
    }

    [Fact]
    public async Task UnsupportedScheme_FailsAsWithoutTheBreaker_AndCreatesNoCircuit()
    {
        var services = new ServiceCollection();
        services.AddHttpClient("users").AddCircuitBreaker(o => o.FailureThreshold = 1);
        await using var provider = services.BuildServiceProvider();
        using var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("users");
        var registry = provider.GetRequiredService<ICircuitBreakerRegistry>();

        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<NotSupportedException>(() => client.GetAsync(new Uri("ftp://files.internal/x")));
        }

        Assert.Empty(registry.GetCircuits());
    }

    [Fact]
    public async Task UnsupportedScheme_GoesStraightToTheInnerHandler_WhichMayServeIt_AndCreatesNoCircuit()
    {
        using var harness = new TestSupport.BreakerHarness(o => o.FailureThreshold = 1);
        var ftp = harness.Mock.When("ftp://files.internal/*").Respond(HttpStatusCode.InternalServerError);
        using var client = harness.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync(new Uri("ftp://files.internal/x"));
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode); // never a CircuitOpenException
        }

        Assert.Equal(3, harness.Mock.GetMatchCount(ftp));
        Assert.Empty(harness.Registry.GetCircuits());
    }

    // ---------------------------------------------------------------------------------------------------------
    // A broken appsettings.json, reloaded while running
    // ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task BrokenAppSettingsFile_ReloadedExplicitly_KeepsTheLastGoodOptions_UntilAGoodOne()
    {
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2, "BreakDuration": "00:01:00" } }""");
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();
        await FailOnceAsync(client, "http://broken-a.internal/x");

        // Half-written JSON: the configuration system throws to whoever reloads, and an explicit reload keeps the
        // file's earlier settings, so they are what the breaker reads.
        var thrown = Record.Exception(() => settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, """));
        Assert.IsType<InvalidDataException>(thrown);

        // FailureThreshold 2 is still in force: one more failure opens a circuit that has one, a new circuit needs two.
        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-a.internal:80").State);
        await FailOnceAsync(client, "http://broken-b.internal/x");
        Assert.Equal(CircuitState.Closed, side.Circuit("users", "http://broken-b.internal:80").State);

        // A good file again: its values apply.
        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""");
        await FailOnceAsync(client, "http://broken-c.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-c.internal:80").State);
    }

    [Fact]
    public async Task BrokenAppSettingsFile_ThenAnotherSourceReloads_KeepsTheLastGoodOptions_AndLogsAnError()
    {
        var other = new ReloadableSource();
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""", others: other);
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();

        // Saved half-written: the watcher's reload fails and the JSON provider drops its data. Then another source
        // of the app (environment-specific settings, a secret store) reloads for its own reasons.
        Assert.IsType<InvalidDataException>(settings.Save("""{ "CircuitBreaker": { "FailureThreshold": """));
        other.Reload();

        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-a.internal:80").State); // FailureThreshold 1, not the default 5
        var logs = side.Logs.GetSnapshot();
        Assert.Contains(logs, r => r.Level == LogLevel.Error && r.Message.Contains("CircuitBreaker", StringComparison.Ordinal));
        var loadFailed = Assert.Single(logs, r => r.Id.Name == "ConfigurationFileLoadFailed");
        Assert.Equal(LogLevel.Error, loadFailed.Level);
        Assert.Contains("appsettings.json", loadFailed.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidDataException>(loadFailed.Exception);
        Assert.Single(logs, r => r.Id.Name == "CircuitBreakerReloadHeldBack" && r.Message.Contains("'CircuitBreaker'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BrokenAppSettingsFile_InAHostsConfiguration_ThenAnotherSourceReloads_KeepsTheLastGoodOptions()
    {
        // A host's configuration is a ConfigurationManager, which the breaker finds as the app's IConfiguration.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var other = new ReloadableSource();
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""", into: builder.Configuration, others: other);
        builder.Logging.AddFakeLogging();
        builder.Services.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler());
        using var host = builder.Build();
        using var client = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("users");

        Assert.IsType<InvalidDataException>(settings.Save("""{ "CircuitBreaker": { "FailureThreshold": """));
        other.Reload();

        await FailOnceAsync(client, "http://broken-a.internal/x");
        var registry = host.Services.GetRequiredService<ICircuitBreakerRegistry>();
        Assert.Equal(CircuitState.Open, registry.GetCircuits().Single().State);
        Assert.Contains(host.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Name == "CircuitBreakerReloadHeldBack");
    }

    [Fact]
    public async Task BrokenAppSettingsFile_ThenSavedComplete_ItsNewOptionsApply_AndNoReloadIsHeldBackAnyMore()
    {
        var other = new ReloadableSource();
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2, "BreakDuration": "00:01:00" } }""", others: other);
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();
        Assert.NotNull(settings.Save("""{ "CircuitBreaker": { "FailureThreshold": 1, """));
        other.Reload();

        Assert.Null(settings.Save("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }"""));
        other.Reload();

        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-a.internal:80").State);
        Assert.Single(side.Logs.GetSnapshot(), r => r.Id.Name == "CircuitBreakerReloadHeldBack"); // the one before the fix
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BrokenOtherFile_ThenFixedToHoldNoSettings_NoLaterReloadIsHeldBack(bool deletedInstead)
    {
        // A file that holds none of the breaker's settings (an environment's appsettings.Production.json with `{}`,
        // optional and deleted) failed to load once, then loaded fine: it has no settings to show for it.
        var directory = Path.Combine(Path.GetTempPath(), "cb-it-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            var main = Path.Combine(directory, "appsettings.json");
            var other = Path.Combine(directory, "appsettings.Production.json");
            File.WriteAllText(main, """{ "CircuitBreaker": { "FailureThreshold": 2, "BreakDuration": "00:01:00" } }""");
            File.WriteAllText(other, "{}");
            var root = new ConfigurationBuilder().AddJsonFile(main, optional: false).AddJsonFile(other, optional: true).Build();
            using var side = ClientSide.Create(root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
            using var client = side.CreateClient();
            File.WriteAllText(other, """{ "Logging": """);
            Assert.IsType<InvalidDataException>(Record.Exception(root.Reload));
            if (deletedInstead)
            {
                File.Delete(other);
            }
            else
            {
                File.WriteAllText(other, "{}");
            }

            root.Reload();
            File.WriteAllText(main, """{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""");
            root.Reload();

            await FailOnceAsync(client, "http://broken-a.internal/x");
            Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-a.internal:80").State); // FailureThreshold 1 applied
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task BrokenAppSettingsFile_TheAppsOwnLoadExceptionHandler_StillRuns_AndItsIgnoreStillDecides()
    {
        var seen = new List<Exception>();
        using var settings = new WatchedAppSettingsFile(
            """{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""",
            source => source.OnLoadException = context =>
            {
                seen.Add(context.Exception);
                context.Ignore = true;
            });
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();

        // The app ignores load failures, so the failed load raises a change itself, with the file's settings gone.
        var thrown = settings.Save("""{ "CircuitBreaker": { "FailureThreshold": """);

        Assert.Null(thrown);
        Assert.IsType<InvalidDataException>(Assert.Single(seen));
        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-a.internal:80").State);
        Assert.Contains(side.Logs.GetSnapshot(), r => r.Id.Name == "CircuitBreakerReloadHeldBack");
    }

    [Fact]
    public void BrokenAppSettingsFile_WhenLoggingTheFailureThrows_TheAppStillGetsOnlyTheFilesOwnError()
    {
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1 } }""");
        using var side = ClientSide.Create(settings.Root, s =>
        {
            s.AddLogging(b => b.AddProvider(new ThrowingLoggerProvider()));
            s.AddHttpClient("users").AddCircuitBreaker();
        });

        var thrown = settings.Save("""{ "CircuitBreaker": { "FailureThreshold": """);

        Assert.IsType<InvalidDataException>(thrown);
    }

    [Fact]
    public void Registry_Disposed_GivesTheFileSourceItsOwnLoadExceptionHandlerBack()
    {
        Action<FileLoadExceptionContext> appHandler = _ => { };
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1 } }""", source => source.OnLoadException = appHandler);
        var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker());
        Assert.NotSame(appHandler, settings.Source.OnLoadException);

        side.Dispose();

        Assert.Same(appHandler, settings.Source.OnLoadException);
    }

    [Fact]
    public void Registries_DisposedInTheOrderTheyWereBuilt_GiveTheFileSourceItsOwnLoadExceptionHandlerBack()
    {
        // Providers built on one configuration whose lifetimes overlap (a host replaced by the next, test classes run in
        // parallel): each chains a hook; the first is disposed while the second's hook still sits on top of its own.
        Action<FileLoadExceptionContext> appHandler = _ => { };
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1 } }""", source => source.OnLoadException = appHandler);
        var first = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker());
        var second = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker());
        var third = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker());

        first.Dispose();
        third.Dispose();
        second.Dispose();

        // Left in the chain, a disposed provider's hook would hold its logging (every provider and what they collected)
        // for as long as the configuration lives, one more for each such provider.
        Assert.Same(appHandler, settings.Source.OnLoadException);
    }

    [Fact]
    public async Task CircuitBreakerSectionDeleted_WhileRunning_TheDefaultsApply_WithAWarningNamingTheSection()
    {
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" }, "Other": { "Key": "1" } }""");
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();

        // Deleting the section is how an operator asks for the defaults: it is applied, not taken for a broken file.
        settings.Rewrite("""{ "Other": { "Key": "1" } }""");

        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.Equal(CircuitState.Closed, side.Circuit("users", "http://broken-a.internal:80").State); // FailureThreshold back to 5
        var warning = Assert.Single(side.Logs.GetSnapshot(), r => r.Id.Name == "CircuitBreakerSectionEmptied");
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("'CircuitBreaker'", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(side.Logs.GetSnapshot(), r => r.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task BrokenAppSettingsFile_WatchedForChanges_NothingThrowsIntoTheApp_AndTheFixedFileApplies()
    {
        using var settings = new WatchedAppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2, "BreakDuration": "00:01:00" } }""");
        using var side = ClientSide.Create(settings.Root, s => s.AddHttpClient("users").AddCircuitBreaker().ConfigurePrimaryHttpMessageHandler(() => new StubHandler()));
        using var client = side.CreateClient();

        // Saved half-written: the watcher's reload fails, on the watcher's thread; the app goes on with the last options.
        var watcherError = settings.Save("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": """);
        await FailOnceAsync(client, "http://broken-a.internal/x");
        Assert.IsType<InvalidDataException>(watcherError); // the JSON provider's own parse error, nothing of ours
        Assert.Equal(CircuitState.Closed, side.Circuit("users", "http://broken-a.internal:80").State);

        // Saved again, complete: the new threshold applies.
        Assert.Null(settings.Save("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }"""));
        await FailOnceAsync(client, "http://broken-watched.internal/x");
        Assert.Equal(CircuitState.Open, side.Circuit("users", "http://broken-watched.internal:80").State);

        Assert.DoesNotContain(side.Logs.GetSnapshot(), r => r.Level >= LogLevel.Error && r.Message.Contains("FailureThreshold", StringComparison.Ordinal));
    }

    private static async Task FailOnceAsync(HttpClient client, string uri)
    {
        using var response = await client.GetAsync(new Uri(uri));
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
    }

    /// <summary>Answers 200 at once (500 for hosts named broken-*), without a network; counts its calls.</summary>
    internal sealed class StubHandler : HttpMessageHandler
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            var status = request.RequestUri!.Host.StartsWith("broken-", StringComparison.Ordinal) ? HttpStatusCode.InternalServerError : HttpStatusCode.OK;
            return new HttpResponseMessage(status) { RequestMessage = request };
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(Send(request, cancellationToken));
    }

    private sealed class ThrowingLoggerProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ThrowingLogger();

        public void Dispose()
        {
        }

        private sealed class ThrowingLogger : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                throw new InvalidOperationException("the logging pipeline is broken");
        }
    }

    /// <summary>A configuration source that reloads on demand, standing for any other source of the app (environment, secrets).</summary>
    private sealed class ReloadableSource : IConfigurationSource
    {
        private readonly ReloadableProvider _provider = new();

        public IConfigurationProvider Build(IConfigurationBuilder builder) => _provider;

        public void Reload() => _provider.Reload();

        private sealed class ReloadableProvider : ConfigurationProvider
        {
            public void Reload() => OnReload();
        }
    }
}

/// <summary>
/// A flood of distinct hosts (100,000; 1,000,000 with <c>CIRCUITBREAKER_LONG_TESTS=1</c>) through one client: the
/// registry stays within <c>MaxCircuits</c>, memory stays flat, and the circuits that were open before the flood are
/// still open after it. Alone, after the parallel tests, because it measures the whole process's memory.
/// </summary>
[Collection(WholeProcessGroup.Name)]
public sealed class HostFloodTests(ITestOutputHelper output)
{
    // ---------------------------------------------------------------------------------------------------------
    // A flood of distinct hosts
    // ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task FloodOfDistinctHosts_KeepsTheRegistryWithinMaxCircuits_MemoryFlat_AndOpenCircuitsOpen()
    {
        const int maxCircuits = 1_000;
        var hosts = ReliabilityRun.FloodHosts;
        var stub = new BadInputTests.StubHandler();
        var services = new ServiceCollection();
        services.AddHttpClient("flood")
            .AddCircuitBreaker(o =>
            {
                o.MaxCircuits = maxCircuits;
                o.FailureThreshold = 1;
                o.BreakDuration = TimeSpan.FromHours(1);
            })
            .ConfigurePrimaryHttpMessageHandler(() => stub);
        await using var provider = services.BuildServiceProvider();
        var registry = provider.GetRequiredService<ICircuitBreakerRegistry>();
        using var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("flood");

        // A few circuits open first: their hosts answer 500.
        string[] broken = [.. Enumerable.Range(0, 5).Select(i => $"http://broken-{i}.internal")];
        foreach (var host in broken)
        {
            using var response = await client.GetAsync(new Uri(host + "/x"));
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        // Warm up with two registries' worth of hosts, then measure.
        Flood(client, 0, 2 * maxCircuits);
        var memoryBefore = Memory();
        var clock = Stopwatch.StartNew();
        var most = 0;
        const int batch = 10_000;
        for (var start = 2 * maxCircuits; start < 2 * maxCircuits + hosts; start += batch)
        {
            Flood(client, start, Math.Min(batch, 2 * maxCircuits + hosts - start));
            most = Math.Max(most, registry.GetCircuits().Count);
        }

        var took = clock.Elapsed;
        var memoryAfter = Memory();
        output.WriteLine($"{hosts} hosts in {took.TotalSeconds:0.0} s; most circuits {most}; memory {memoryBefore / 1024 / 1024.0:0.0} MB -> {memoryAfter / 1024 / 1024.0:0.0} MB");

        Assert.InRange(most, 1, maxCircuits);
        Assert.True(memoryAfter - memoryBefore < 16L * 1024 * 1024, $"managed memory grew by {(memoryAfter - memoryBefore) / 1024 / 1024} MB over {hosts} hosts");

        // The open circuits were not evicted to make room: they are still open, and still keep calls away.
        var calls = stub.Calls;
        foreach (var host in broken)
        {
            Assert.Equal(CircuitState.Open, registry.GetCircuits().Single(c => c.Authority == host + ":80").State);
            await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri(host + "/x")));
        }

        Assert.Equal(calls, stub.Calls);
    }

    private static void Flood(HttpClient client, int first, int count) =>
        Parallel.For(first, first + count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var response = client.Send(new HttpRequestMessage(HttpMethod.Get, new Uri($"http://h{i}.flood.example:{8000 + (i % 1000)}/x")));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        });

    private static long Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
