using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// Validates at start-up the options of every client that a breaker for every client configures from a
/// <c>Clients:{name}</c> overlay. Such a breaker cannot name its clients when it is registered, but its configuration
/// names those it overlays; without this, an invalid overlay (a typo in a key, a value out of range) would let the host
/// start and then fail every call of that client.
/// </summary>
/// <remarks>
/// An empty options type, <see cref="StartupCheck"/>, validated on start: <c>ValidateOnStart</c> takes names known at registration, and these are
/// known only once the configuration can be read. Clients added by name are validated on start under their own name
/// already, and are skipped here so that their failure is reported once.
/// </remarks>
internal sealed class ClientOverlayValidation
{
    /// <summary>The clients a breaker was added to by name.</summary>
    private readonly HashSet<string> _namedClients = new(StringComparer.OrdinalIgnoreCase);

    public static void Register(IServiceCollection services, string? clientName)
    {
        var validation = services.FirstOrDefault(d => d.ServiceType == typeof(ClientOverlayValidation))?.ImplementationInstance as ClientOverlayValidation;
        if (validation is null)
        {
            validation = new ClientOverlayValidation();
            services.AddSingleton(validation);
            services.AddOptions<StartupCheck>()
                .Configure<IOptionsFactory<CircuitBreakerOptions>, IEnumerable<IConfigureOptions<CircuitBreakerOptions>>>(
                    (_, factory, setups) => validation.Validate(factory, setups))
                .ValidateOnStart();
        }

        if (clientName is not null)
        {
            validation._namedClients.Add(clientName);
        }
    }

    private void Validate(IOptionsFactory<CircuitBreakerOptions> factory, IEnumerable<IConfigureOptions<CircuitBreakerOptions>> setups)
    {
        var overlaid = setups.OfType<CircuitBreakerConfiguration>()
            .Where(c => c.Section is not null && c.AppliesToEveryClient)
            .SelectMany(c => c.Section!.GetSection(CircuitBreakerConfiguration.ClientsKey).GetChildren().Select(client => client.Key))
            .Where(name => !_namedClients.Contains(name))
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();
        if (overlaid.Count == 0)
        {
            return;
        }

        // Every overlay lies over the shared section: a mistake there would fail each of them too, and be reported once
        // per overlay, blamed on its client, beside the shared section's own report. That one check (the default name's,
        // validated on start too) reports it; the overlays are checked once it passes.
        try
        {
            _ = factory.Create(Options.DefaultName);
        }
        catch (OptionsValidationException)
        {
            return;
        }

        // Configuration keys ignore case and option names do not: the overlay "users" configures the client "Users" too.
        // When code configures a client whose name differs from the key only in case, that is the client the overlay is
        // for, and it is validated with what the code sets for it; otherwise under the key itself.
        var namedInCode = setups.OfType<ConfigureNamedOptions<CircuitBreakerOptions>>()
            .Select(c => c.Name)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .ToList();
        var names = overlaid.SelectMany(key =>
            namedInCode.Where(n => string.Equals(n, key, StringComparison.OrdinalIgnoreCase)).DefaultIfEmpty(key));

        var failures = new List<OptionsValidationException>();
        foreach (var name in names.Distinct(StringComparer.Ordinal))
        {
            try
            {
                _ = factory.Create(name);
            }
            catch (OptionsValidationException ex)
            {
                failures.Add(ex);
            }
        }

        if (failures.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
        }

        if (failures.Count > 1)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(CircuitBreakerOptions), failures.SelectMany(f => f.Failures));
        }
    }

    /// <summary>Options of nothing: creating them on start runs <see cref="Validate"/>.</summary>
    private sealed class StartupCheck;
}
