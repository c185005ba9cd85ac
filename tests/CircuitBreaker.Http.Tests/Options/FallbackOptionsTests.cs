using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Options;

public sealed class FallbackOptionsTests
{
    private readonly CircuitBreakerOptionsValidator _validator = new();

    public static TheoryData<string, Action<CircuitBreakerOptions>> InvalidFallbacks => new()
    {
        { "Fallback:Degraded:StatusCode", o => o.Fallback.Degraded.StatusCode = 700 },
        { "Fallback:Degraded:StatusCode", o => o.Fallback.Degraded.StatusCode = 99 },
        { "Fallback:Degraded:ContentType", o => o.Fallback.Degraded.Body = "{}" },
        { "Fallback:Degraded:ContentType", o => (o.Fallback.Degraded.Body, o.Fallback.Degraded.ContentType) = ("{}", "not a media type") },
        { "Fallback:Degraded:Headers", o => o.Fallback.Degraded.Headers["Bad Header"] = "1" },
        { "Fallback:AlternateBaseAddress", o => o.Fallback.AlternateBaseAddress = new Uri("/backup", UriKind.Relative) },
        { "Fallback:AlternateBaseAddress", o => o.Fallback.AlternateBaseAddress = new Uri("ftp://backup.test") },
        { "Fallback:Cache:MaxAge", o => o.Fallback.Cache.MaxAge = TimeSpan.Zero },
        { "Fallback:Cache:MaxEntries", o => o.Fallback.Cache.MaxEntries = 0 },
        { "Fallback:Cache:MaxEntryBytes", o => o.Fallback.Cache.MaxEntryBytes = -1 },
        { "Fallback:Cache:MaxTotalBytes", o => o.Fallback.Cache.MaxTotalBytes = -1 },
    };

    [Theory]
    [MemberData(nameof(InvalidFallbacks))]
    public void Validate_InvalidFallback_FailsNamingTheKey(string key, Action<CircuitBreakerOptions> breakIt)
    {
        var options = new CircuitBreakerOptions();
        breakIt(options);

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains(key, result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("X-Circuit-Fallback")]
    [InlineData("x-circuit-fallback")]
    public void Validate_DegradedHeaderThatTheBreakerSetsItself_FailsNamingTheKeyAndTheHeader(string header)
    {
        var options = new CircuitBreakerOptions();
        options.Fallback.Degraded.StatusCode = 503;
        options.Fallback.Degraded.Headers[header] = "60";

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("CircuitBreaker:Fallback:Degraded:Headers", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains($"'{header}' cannot be configured", result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Type", "use ContentType")]
    [InlineData("content-type", "use ContentType")]
    [InlineData("Content-Length", "the body's own")]
    [InlineData("CONTENT-LENGTH", "the body's own")]
    public void Validate_DegradedHeaderThatTheBodyDetermines_FailsNamingTheKeyTheHeaderAndWhatToUseInstead(string header, string instead)
    {
        var options = new CircuitBreakerOptions();
        (options.Fallback.Degraded.Body, options.Fallback.Degraded.ContentType) = ("{}", "application/json");
        options.Fallback.Degraded.Headers[header] = "text/plain";

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("CircuitBreaker:Fallback:Degraded:Headers", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains($"'{header}' cannot be configured", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains(instead, result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Type")]
    [InlineData("Content-Length")]
    public void Validate_DegradedHeaderThatTheBodyDetermines_InAHostOverride_FailsNamingTheHost(string header)
    {
        var options = new CircuitBreakerOptions();
        (options.Fallback.Degraded.Body, options.Fallback.Degraded.ContentType) = ("{}", "application/json");
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions();
        options.Hosts["users.internal"].Fallback.Degraded.Headers[header] = "5";

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("Hosts:users.internal:Fallback:Degraded:Headers", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains($"'{header}' cannot be configured", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_InvalidHostFallbackOverride_FailsNamingTheHost()
    {
        var options = new CircuitBreakerOptions();
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions();
        options.Hosts["users.internal"].Fallback.Degraded.Body = "{}";

        var result = _validator.Validate("users", options);

        Assert.Contains("Hosts:users.internal:Fallback:Degraded:ContentType", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_BindsTheWholeFallbackSection()
    {
        var options = Bind(new()
        {
            ["CircuitBreaker:Fallback:Cache:Enabled"] = "true",
            ["CircuitBreaker:Fallback:Cache:MaxAge"] = "00:01:00",
            ["CircuitBreaker:Fallback:Cache:MaxEntries"] = "10",
            ["CircuitBreaker:Fallback:Cache:MaxEntryBytes"] = "2048",
            ["CircuitBreaker:Fallback:Cache:MaxTotalBytes"] = "65536",
            ["CircuitBreaker:Fallback:Cache:ExcludeRequestsWithCredentials"] = "true",
            ["CircuitBreaker:Fallback:AlternateBaseAddress"] = "https://backup.internal",
            ["CircuitBreaker:Fallback:Degraded:StatusCode"] = "200",
            ["CircuitBreaker:Fallback:Degraded:ContentType"] = "application/json",
            ["CircuitBreaker:Fallback:Degraded:Body"] = """{"user":null}""",
            ["CircuitBreaker:Fallback:Degraded:Headers:X-Degraded"] = "1",
            ["CircuitBreaker:Hosts:orders.internal:Fallback:Cache:Enabled"] = "false",
            ["CircuitBreaker:Hosts:orders.internal:Fallback:Degraded:Body"] = "[]",
        });

        var cache = options.Fallback.Cache;
        Assert.True(cache.Enabled);
        Assert.Equal(TimeSpan.FromMinutes(1), cache.MaxAge);
        Assert.Equal((10, 2048, 65536L, true), (cache.MaxEntries, cache.MaxEntryBytes, cache.MaxTotalBytes, cache.ExcludeRequestsWithCredentials));
        Assert.Equal(new Uri("https://backup.internal"), options.Fallback.AlternateBaseAddress);
        Assert.Equal((200, "application/json", """{"user":null}"""), (options.Fallback.Degraded.StatusCode, options.Fallback.Degraded.ContentType, options.Fallback.Degraded.Body));
        Assert.Equal("1", options.Fallback.Degraded.Headers["x-degraded"]);

        var orders = options.ForHost("orders.internal").Fallback;
        Assert.False(orders.Cache.Enabled);
        Assert.Equal(TimeSpan.FromMinutes(1), orders.Cache.MaxAge);
        Assert.Equal("[]", orders.Degraded.Body);
        Assert.Equal("application/json", orders.Degraded.ContentType);
        Assert.Equal("1", orders.Degraded.Headers["X-Degraded"]);
    }

    [Theory]
    [InlineData("CircuitBreaker:Fallback:Cache:Enabeld")]
    [InlineData("CircuitBreaker:Fallback:Degraded:Status")]
    [InlineData("CircuitBreaker:Fallback:OnOpen")]
    [InlineData("CircuitBreaker:Hosts:users.internal:Fallback:Cache:MaxEntries")]
    [InlineData("CircuitBreaker:Clients:users:Fallback:Alternate")]
    public void Configure_UnknownFallbackKey_FailsNamingTheKey(string key)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Bind(new() { [key] = "1" }));

        Assert.Contains(key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_DegradedHeaders_AcceptAnyHeaderName()
    {
        var options = Bind(new() { ["CircuitBreaker:Fallback:Degraded:Headers:X-Anything-Goes"] = "yes" });

        Assert.Equal("yes", options.Fallback.Degraded.Headers["X-Anything-Goes"]);
    }

    private static CircuitBreakerOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new CircuitBreakerOptions();
        new CircuitBreakerConfiguration(clientName: null, configuration.GetSection("CircuitBreaker")).Configure("users", options);
        return options;
    }
}
