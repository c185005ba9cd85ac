using System.Net.Http.Headers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// Validates the options of one client: the generated annotation rules, the rules that annotations cannot
/// say, and every host override laid over the client's options. Messages name the configuration key.
/// </summary>
internal sealed class CircuitBreakerOptionsValidator : IValidateOptions<CircuitBreakerOptions>
{
    // The longest a timer accepts (0xFFFFFFFE ms, about 49.7 days): a longer one would make the attempt's timer throw on
    // every call.
    private static readonly TimeSpan MaxAttemptTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    private readonly CircuitBreakerOptionsDataValidator _dataValidator = new();
    private readonly CircuitBreakerConfiguration[] _sections;

    public CircuitBreakerOptionsValidator()
        : this([])
    {
    }

    /// <param name="setups">The app's setups of the options, of which the configuration sections name the keys in messages.</param>
    public CircuitBreakerOptionsValidator(IEnumerable<IConfigureOptions<CircuitBreakerOptions>> setups) =>
        _sections = [.. setups.OfType<CircuitBreakerConfiguration>().Where(c => c.Section is not null)];

    public ValidateOptionsResult Validate(string? name, CircuitBreakerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        // A value may come from the shared section or from the client's overlay, so keys are named as in the
        // shared section and the client is named once in front.
        var path = SectionPath(name ?? Options.DefaultName);
        var builder = new ValidateOptionsResultBuilder();
        var client = new ValidateOptionsResultBuilder();
        ValidateOne(path, options, client);
        var clientResult = client.Build();
        builder.AddResult(clientResult);

        foreach (var (host, overrides) in options.Hosts)
        {
            var hostPath = $"{path}:{nameof(CircuitBreakerOptions.Hosts)}:{host}";
            if (HostKeyError(host) is { } hostError)
            {
                builder.AddError(hostError, hostPath);
            }
            else if (overrides is null)
            {
                builder.AddError("must be an object of overrides", hostPath);
            }
            else
            {
                // A host inherits every value it does not set, so each of the client's own mistakes would come back here,
                // once per host, blamed on a host key the operator never wrote: a failure the client's options have already
                // is reported once, for the client. Unless the host's own values make it too (laid over the defaults): a
                // message does not say which value is wrong, and the host's would be told only once the client's is fixed.
                var merged = new ValidateOptionsResultBuilder();
                ValidateOne(hostPath, options.WithOverrides(overrides), merged);
                IEnumerable<string>? own = null;
                foreach (var failure in merged.Build().Failures ?? [])
                {
                    if (clientResult.Failures?.Contains(failure.Replace(hostPath, path, StringComparison.Ordinal), StringComparer.Ordinal) != true
                        || (own ??= OwnFailures(hostPath, overrides)).Contains(failure, StringComparer.Ordinal))
                    {
                        builder.AddError(failure);
                    }
                }
            }
        }

        // The alternate host's circuit counts against MaxCircuits: with room for one circuit only, it would evict the open
        // circuit whose calls it answers, and the next call would find a fresh closed circuit and go to the broken host.
        if (options.MaxCircuits < 2
            && (options.Fallback.AlternateBaseAddress is not null || options.Hosts.Values.Any(h => h?.Fallback.AlternateBaseAddress is not null)))
        {
            builder.AddError(
                "must be at least 2 with Fallback:AlternateBaseAddress: the alternate host's circuit takes a place too, and with one place it would evict the open circuit whose calls it answers",
                $"{path}:{nameof(options.MaxCircuits)}");
        }

        // A host written in Unicode in one layer and in punycode in another is two keys for one host, and only one of
        // them would apply.
        foreach (var same in options.Hosts.Keys.GroupBy(CircuitBreakerOptions.AsciiHost, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            builder.AddError(
                $"'{string.Join("' and '", same)}' are the same host, and only one of their overrides would apply; write it once",
                $"{path}:{nameof(CircuitBreakerOptions.Hosts)}:{same.First()}");
        }

        var result = builder.Build();
        return result.Failed && !string.IsNullOrEmpty(name)
            ? ValidateOptionsResult.Fail(result.Failures.Select(f => $"Client '{name}': {f}"))
            : result;
    }

    /// <summary>
    /// The path of the section that configures the client <paramref name="name"/>, so that a message names the key
    /// where the app wrote it (<c>AddCircuitBreaker(configuration.GetSection("Http:Breaker"))</c> reads
    /// <c>Http:Breaker</c>); <c>CircuitBreaker</c>, the default section, when the options come from code, from the
    /// configuration's root or from more than one section.
    /// </summary>
    private string SectionPath(string name)
    {
        string? found = null;
        foreach (var configuration in _sections)
        {
            // The root of a configuration has no path to name; its keys are named as in the default section.
            if (!configuration.AppliesTo(name) || configuration.Section is not IConfigurationSection { Path: { Length: > 0 } path })
            {
                continue;
            }

            if (found is not null && !string.Equals(found, path, StringComparison.OrdinalIgnoreCase))
            {
                return CircuitBreakerConfiguration.DefaultSectionName;
            }

            found = path;
        }

        return found ?? CircuitBreakerConfiguration.DefaultSectionName;
    }

    /// <summary>
    /// Why no request can ever match <paramref name="host"/>, or <see langword="null"/> when it is a key that can.
    /// Configuration keys cannot hold ':', but a key set in code can, and a port or bracketed address there would
    /// otherwise be accepted and never apply.
    /// </summary>
    private static string? HostKeyError(string host)
    {
        const string bareHost = "use a bare host such as users.internal (every port of it is matched)";
        if (string.IsNullOrWhiteSpace(host) || host.Contains('/', StringComparison.Ordinal))
        {
            return $"'{host}' is not a host name; {bareHost}";
        }

        if (!host.Contains(':', StringComparison.Ordinal))
        {
            return null;
        }

        // Requests are matched on Uri.IdnHost, which gives an IPv6 address without brackets, in its shortest form
        // (::1, not 0:0:0:0:0:0:0:1) and lower case; the hosts dictionary ignores case, so only the form must agree.
        if (IPv6Host(host) is { } ipv6)
        {
            return string.Equals(ipv6, host, StringComparison.OrdinalIgnoreCase)
                ? null
                : $"'{host}' never matches a request: write this IPv6 address as {ipv6}, the form a request's host takes";
        }

        var closing = host.StartsWith('[') ? host.IndexOf(']', StringComparison.Ordinal) : -1;
        if (closing > 0 && IPv6Host(host[1..closing]) is { } bracketed)
        {
            return $"'{host}' never matches a request: write this IPv6 address as {bracketed}, without brackets or a port (every port of it is matched)";
        }

        var colon = host.LastIndexOf(':');
        return colon > 0 && int.TryParse(host.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)
            ? $"'{host}' has a port, so it never matches a request: write {host[..colon]}, the override applies to every port of it"
            : $"'{host}' is not a host name, so it never matches a request; {bareHost}";
    }

    /// <summary>The host a request to the IPv6 address <paramref name="address"/> has, or <see langword="null"/> when it is not one.</summary>
    private static string? IPv6Host(string address) =>
        Uri.TryCreate($"http://[{address}]/", UriKind.Absolute, out var uri) && uri.HostNameType == UriHostNameType.IPv6 ? uri.IdnHost : null;

    /// <summary>The failures of a host's overrides laid over the default options: those its own values make.</summary>
    private IEnumerable<string> OwnFailures(string hostPath, CircuitBreakerHostOptions overrides)
    {
        var builder = new ValidateOptionsResultBuilder();
        ValidateOne(hostPath, new CircuitBreakerOptions().WithOverrides(overrides), builder);
        return builder.Build().Failures ?? [];
    }

    private void ValidateOne(string path, CircuitBreakerOptions options, ValidateOptionsResultBuilder builder)
    {
        builder.AddResult(ConfigurationKeyPath.Of(_dataValidator.Validate(path, options), path));

        if (options.AttemptTimeout is { } attempt && attempt != Timeout.InfiniteTimeSpan && (attempt <= TimeSpan.Zero || attempt > MaxAttemptTimeout))
        {
            builder.AddError(
                $"must be a positive duration of at most {MaxAttemptTimeout} (the longest a timer accepts), or null or -00:00:00.001 (infinite) to turn the timeout off",
                $"{path}:{nameof(options.AttemptTimeout)}");
        }

        if (options.SlowCallDuration is { } slow && slow != Timeout.InfiniteTimeSpan && slow <= TimeSpan.Zero)
        {
            builder.AddError("must be a positive duration, or null to turn slow-call counting off", $"{path}:{nameof(options.SlowCallDuration)}");
        }

        if (options.FailureStatusCodes is not null && !StatusCodeSet.TryParse(options.FailureStatusCodes, out _, out var error))
        {
            builder.AddError(error, $"{path}:{nameof(options.FailureStatusCodes)}");
        }

        if (options.RampUpDuration is { } ramp && ramp <= TimeSpan.Zero)
        {
            builder.AddError("must be a positive duration, or null to turn the slow start off", $"{path}:{nameof(options.RampUpDuration)}");
        }

        if (options.MaxQueuedRequests > 0 && options.MaxConcurrentRequests is null)
        {
            builder.AddError("needs MaxConcurrentRequests: calls queue for its permits", $"{path}:{nameof(options.MaxQueuedRequests)}");
        }

        if (options.Throttle.Burst is not null && options.Throttle.PermitsPerSecond is null)
        {
            builder.AddError("needs Throttle:PermitsPerSecond: the bucket refills at that rate", $"{path}:{nameof(options.Throttle)}:{nameof(options.Throttle.Burst)}");
        }

        ValidateFallback($"{path}:{nameof(options.Fallback)}", options.Fallback, builder);
    }

    private static void ValidateFallback(string path, CircuitBreakerFallbackOptions fallback, ValidateOptionsResultBuilder builder)
    {
        if (fallback.AlternateBaseAddress is { } alternate
            && (!alternate.IsAbsoluteUri || (alternate.Scheme != Uri.UriSchemeHttp && alternate.Scheme != Uri.UriSchemeHttps)))
        {
            builder.AddError("must be an absolute http or https address such as https://users-backup.internal", $"{path}:{nameof(fallback.AlternateBaseAddress)}");
        }

        var degraded = fallback.Degraded;
        var degradedPath = $"{path}:{nameof(fallback.Degraded)}";
        if (degraded.Body is not null && degraded.ContentType is null)
        {
            builder.AddError("a body needs a ContentType, such as application/json", $"{degradedPath}:{nameof(degraded.ContentType)}");
        }

        if (degraded.ContentType is not null && !MediaTypeHeaderValue.TryParse(degraded.ContentType, out _))
        {
            builder.AddError($"'{degraded.ContentType}' is not a media type such as application/json", $"{degradedPath}:{nameof(degraded.ContentType)}");
        }

        foreach (var (name, value) in degraded.Headers)
        {
            // The breaker marks every degraded response itself, so a configured mark would make two values. (A configured
            // Retry-After is kept apart and sent only when the breaker has no time of its own: see DegradedResponse.)
            if (string.Equals(name, FallbackPolicy.FallbackHeaderName, StringComparison.OrdinalIgnoreCase))
            {
                builder.AddError($"'{name}' cannot be configured: the circuit breaker sets it itself, to the kind of fallback, degraded", $"{degradedPath}:{nameof(degraded.Headers)}");
                continue;
            }

            // The body is built from Body and ContentType: a configured Content-Type would sit beside ContentType's (or
            // stand in for it without its check), and a Content-Length would announce a length the body does not have.
            if (string.Equals(name, "Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                builder.AddError($"'{name}' cannot be configured among the headers: use ContentType, the media type of Body", $"{degradedPath}:{nameof(degraded.Headers)}");
                continue;
            }

            if (string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                builder.AddError($"'{name}' cannot be configured: the length is the body's own, that of Body in UTF-8", $"{degradedPath}:{nameof(degraded.Headers)}");
                continue;
            }

            using var probe = new HttpResponseMessage();
            using var content = new ByteArrayContent([]);
            if (!probe.Headers.TryAddWithoutValidation(name, value) && !content.Headers.TryAddWithoutValidation(name, value))
            {
                builder.AddError($"'{name}' cannot be set on a response", $"{degradedPath}:{nameof(degraded.Headers)}");
            }
        }
    }
}
