#!powershell

# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Switches IIS HTTPS bindings to a certificate, one binding per commit, keeping every sslFlags bit.
# Why not microsoft.iis.website: its Get-SSLFlagFromBinding (microsoft.iis 1.1.0,
# plugins/modules/website.ps1) rebuilds sslFlags from use_sni (1) and use_ccs (2) only and writes that
# value back, so IIS 10 bits (4 disable HTTP/2, 8 disable OCSP stapling, 16 disable QUIC, 32 disable
# TLS 1.3 over TCP, 64 disable legacy TLS) are cleared on every edit; it also derives use_ccs as
# Floor(sslFlags / 2), which is true for any flag above 1. Here the flags are read, the planned bits
# set, and the rest kept.

$spec = @{
    options = @{
        state = @{ type = 'str'; choices = @('present', 'rollback'); default = 'present' }
        thumbprint = @{ type = 'str' }
        certificate_store = @{ type = 'str'; default = 'My' }
        bindings = @{
            type = 'list'
            elements = 'dict'
            default = @()
            options = @{
                site = @{ type = 'str'; required = $true }
                ip = @{ type = 'str'; default = '*' }
                port = @{ type = 'int'; default = 443 }
                host = @{ type = 'str'; default = '' }
                sni = @{ type = 'bool'; default = $true }
                ssl_flags = @{ type = 'int' }
                previous_thumbprint = @{ type = 'str' }
                previous_ssl_flags = @{ type = 'int' }
                action = @{ type = 'str' }
            }
        }
        record = @{
            type = 'list'
            elements = 'dict'
            default = @()
            options = @{
                site = @{ type = 'str'; required = $true }
                ip = @{ type = 'str'; default = '*' }
                port = @{ type = 'int'; default = 443 }
                host = @{ type = 'str'; default = '' }
                existed = @{ type = 'bool'; default = $true }
                previous_thumbprint = @{ type = 'str' }
                previous_ssl_flags = @{ type = 'int'; default = 0 }
                thumbprint = @{ type = 'str' }
            }
        }
        verify_http_sys = @{ type = 'bool'; default = $true }
    }
    required_if = @(
        , @('state', 'present', @('thumbprint'))
    )
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$checkMode = $module.CheckMode
$p = $module.Params
$module.Result.changed = $false
$module.Result.record = [System.Collections.Generic.List[Object]]@()
$module.Result.bindings = [System.Collections.Generic.List[Object]]@()
$diffBefore = [System.Collections.Generic.List[Object]]@()
$diffAfter = [System.Collections.Generic.List[Object]]@()

$dll = Join-Path -Path $env:windir -ChildPath 'System32\inetsrv\Microsoft.Web.Administration.dll'
if (-not (Test-Path -LiteralPath $dll)) {
    $module.FailJson("IIS is not installed on this host ($dll is missing)")
}
Add-Type -Path $dll

function Format-Thumbprint([string]$value) {
    if (-not $value) {
        return $null
    }
    return ($value -replace '[^0-9a-fA-F]', '').ToUpperInvariant()
}

function ConvertTo-Bytes([string]$hex) {
    $bytes = New-Object -TypeName byte[] -ArgumentList ($hex.Length / 2)
    for ($i = 0; $i -lt $bytes.Length; $i++) {
        $bytes[$i] = [System.Convert]::ToByte($hex.Substring($i * 2, 2), 16)
    }
    return , $bytes
}

function Get-BindingState($site, [string]$info) {
    foreach ($binding in $site.Bindings) {
        if ($binding.Protocol -eq 'https' -and $binding.BindingInformation -eq $info) {
            $hash = $null
            if ($null -ne $binding.CertificateHash -and $binding.CertificateHash.Length -gt 0) {
                $hash = ([System.BitConverter]::ToString([byte[]]$binding.CertificateHash)).Replace('-', '').ToUpperInvariant()
            }
            return @{ binding = $binding; thumbprint = $hash; ssl_flags = [int]$binding.GetAttributeValue('sslFlags') }
        }
    }
    return $null
}

function Get-HttpSysThumbprint([string]$ip, [int]$port, [string]$hostName, [int]$flags) {
    # The certificate http.sys really serves on this endpoint: hostnameport for SNI bindings, ipport otherwise.
    if (($flags -band 1) -eq 1) {
        $output = & netsh.exe http show sslcert "hostnameport=${hostName}:$port" 2>&1
    }
    else {
        $address = if ($ip -eq '*' -or $ip -eq '') { '0.0.0.0' } else { $ip }
        $output = & netsh.exe http show sslcert "ipport=${address}:$port" 2>&1
    }
    foreach ($line in @($output)) {
        if ([string]$line -match '\b([0-9a-fA-F]{40})\b') {
            return $Matches[1].ToUpperInvariant()
        }
    }
    return $null
}

function Set-Binding([hashtable]$target) {
    # One binding, one commit: a failure leaves every other binding as it was.
    $manager = New-Object -TypeName Microsoft.Web.Administration.ServerManager
    try {
        $site = $manager.Sites[$target.site]
        if ($null -eq $site) {
            $module.FailJson("IIS has no site named '$($target.site)'")
        }
        $info = "$($target.ip):$($target.port):$($target.host)"
        $state = Get-BindingState -site $site -info $info
        $entry = @{
            site = $target.site; ip = $target.ip; port = $target.port; host = $target.host
            existed = $null -ne $state
            previous_thumbprint = if ($null -ne $state) { $state.thumbprint } else { $null }
            previous_ssl_flags = if ($null -ne $state) { $state.ssl_flags } else { 0 }
            thumbprint = $target.thumbprint
            ssl_flags = $target.ssl_flags
        }
        if ($target.remove) {
            $changed = $null -ne $state
        }
        else {
            $changed = $null -eq $state -or $state.thumbprint -ne $target.thumbprint -or $state.ssl_flags -ne $target.ssl_flags
        }
        $diffBefore.Add(@{ binding = "$($target.site) https/$info"; thumbprint = $entry.previous_thumbprint; ssl_flags = $entry.previous_ssl_flags })
        if ($target.remove) {
            $diffAfter.Add(@{ binding = "$($target.site) https/$info"; thumbprint = $null; ssl_flags = $null })
        }
        else {
            $diffAfter.Add(@{ binding = "$($target.site) https/$info"; thumbprint = $target.thumbprint; ssl_flags = $target.ssl_flags })
        }
        $entry.changed = $changed
        if ($changed -and -not $checkMode) {
            if ($target.remove) {
                $site.Bindings.Remove($state.binding)
            }
            elseif ($null -eq $state) {
                $bytes = ConvertTo-Bytes -hex $target.thumbprint
                [void]$site.Bindings.Add($info, $bytes, $p.certificate_store, [Microsoft.Web.Administration.SslFlags]$target.ssl_flags)
            }
            else {
                if ($target.thumbprint) {
                    $state.binding.CertificateHash = ConvertTo-Bytes -hex $target.thumbprint
                    $state.binding.CertificateStoreName = $p.certificate_store
                }
                $state.binding.SetAttributeValue('sslFlags', $target.ssl_flags)
            }
            try {
                $manager.CommitChanges()
            }
            catch {
                $module.FailJson("Updating the binding $info of site '$($target.site)' failed: $($_.Exception.Message)", $_)
            }
        }
        if ($changed) {
            $module.Result.changed = $true
        }
        # In the record before the http.sys check: a binding committed but not served is rolled back too.
        if ($target.record) {
            $module.Result.record.Add($entry)
        }
        $module.Result.bindings.Add($entry)
        # http.sys must serve what IIS's configuration now says (central certificate store bindings have no hash there).
        if (-not $checkMode -and -not $target.remove -and $target.thumbprint -and $p.verify_http_sys -and ($target.ssl_flags -band 2) -eq 0) {
            $served = Get-HttpSysThumbprint -ip $target.ip -port $target.port -hostName $target.host -flags $target.ssl_flags
            if ($served -ne $target.thumbprint) {
                $module.FailJson(("The binding $info of site '$($target.site)' is set to $($target.thumbprint) but http.sys " +
                        "serves $served on that endpoint (netsh http show sslcert)"))
            }
        }
        return $entry
    }
    finally {
        $manager.Dispose()
    }
}

if ($p.state -eq 'present') {
    $thumbprint = Format-Thumbprint $p.thumbprint
    # A binding to a certificate IIS cannot use fails later, at the first handshake: refuse it now.
    $certStore = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList $p.certificate_store, 'LocalMachine'
    $certStore.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly')
    try {
        $certificate = $certStore.Certificates | Where-Object { $_.Thumbprint.ToUpperInvariant() -eq $thumbprint } | Select-Object -First 1
    }
    finally {
        $certStore.Close()
    }
    # In check mode the import before this step did not run: the certificate may not be there yet.
    if (-not $checkMode -and ($null -eq $certificate -or -not $certificate.HasPrivateKey)) {
        $module.FailJson(("The certificate $thumbprint is not in LocalMachine\$($p.certificate_store) with its private key: " +
                "no binding was changed"))
    }
    foreach ($item in $p.bindings) {
        $wanted = [int]$item.ssl_flags
        if ($null -eq $item.ssl_flags) {
            $wanted = if ($item.sni) { 1 } else { 0 }
        }
        if (($wanted -band 1) -eq 1 -and -not $item.host) {
            $module.FailJson("The binding of site '$($item.site)' on port $($item.port) uses SNI but has no host name")
        }
        # Keep every bit above SNI / central store that the binding has now, whatever the plan was built from.
        $manager = New-Object -TypeName Microsoft.Web.Administration.ServerManager
        try {
            $site = $manager.Sites[$item.site]
            if ($null -ne $site) {
                $current = Get-BindingState -site $site -info "$($item.ip):$($item.port):$($item.host)"
                if ($null -ne $current) {
                    $wanted = ($wanted -band 3) -bor ($current.ssl_flags -band (-bnot 3))
                }
            }
        }
        finally {
            $manager.Dispose()
        }
        [void](Set-Binding -target @{
            site = $item.site; ip = $item.ip; port = $item.port; host = $item.host
            thumbprint = $thumbprint; ssl_flags = $wanted; remove = $false; record = $true
        })
    }
}
else {
    # Rollback: each binding back to the certificate and flags it had; one this run added is removed.
    foreach ($item in $p.record) {
        [void](Set-Binding -target @{
            site = $item.site; ip = $item.ip; port = $item.port; host = $item.host
            thumbprint = Format-Thumbprint $item.previous_thumbprint; ssl_flags = [int]$item.previous_ssl_flags
            remove = -not $item.existed; record = $false
        })
    }
}

$module.Diff.before = @{ bindings = $diffBefore }
$module.Diff.after = @{ bindings = $diffAfter }
$module.ExitJson()
