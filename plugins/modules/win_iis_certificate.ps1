#!powershell

# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Puts one certificate into Windows the way IIS needs it: the PFX (leaf + key) into LocalMachine\My
# with machine key storage, intermediates into CA, the root into Root only when asked; removes or
# reports same-name roots; repairs a lost key association; checks HasPrivateKey; deletes the copied
# PFX. state=absent removes certificates no binding uses. Decisions come from the controller's
# iis_plan; this module only carries them out and checks the result.

$certSpec = @{
    thumbprint = @{ type = 'str'; required = $true }
    subject = @{ type = 'str' }
    pem = @{ type = 'str' }
    not_after = @{ type = 'str' }
    action = @{ type = 'str'; choices = @('remove', 'report'); default = 'report' }
}

$spec = @{
    options = @{
        state = @{ type = 'str'; choices = @('present', 'absent'); default = 'present' }
        thumbprint = @{ type = 'str' }
        pfx_path = @{ type = 'path' }
        pfx_passphrase = @{ type = 'str'; no_log = $true }
        key_exportable = @{ type = 'bool'; default = $false }
        intermediates = @{ type = 'list'; elements = 'dict'; default = @(); options = $certSpec }
        root = @{ type = 'dict'; options = $certSpec }
        conflicting_roots = @{ type = 'list'; elements = 'dict'; default = @(); options = $certSpec }
        repair = @{ type = 'list'; elements = 'str'; default = @() }
        app_pool_identity = @{ type = 'str' }
        remove_pfx = @{ type = 'bool'; default = $true }
        thumbprints = @{ type = 'list'; elements = 'str'; default = @() }
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
$module.Result.actions = [System.Collections.Generic.List[Object]]@()
$module.Result.reported_roots = [System.Collections.Generic.List[Object]]@()
$module.Result.kept_bound = [System.Collections.Generic.List[Object]]@()

$X509 = 'System.Security.Cryptography.X509Certificates'

function Format-Thumbprint([string]$value) {
    return ($value -replace '[^0-9a-fA-F]', '').ToUpperInvariant()
}

function Open-Store([string]$name, [bool]$write) {
    $store = New-Object -TypeName "$X509.X509Store" -ArgumentList $name, 'LocalMachine'
    if ($write) {
        $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadWrite')
    }
    else {
        $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly')
    }
    return $store
}

function Find-Certificate([string]$storeName, [string]$thumbprint) {
    $store = Open-Store -name $storeName -write $false
    try {
        foreach ($cert in $store.Certificates) {
            if ($cert.Thumbprint.ToUpperInvariant() -eq $thumbprint) {
                return $cert
            }
        }
        return $null
    }
    finally {
        $store.Close()
    }
}

function Get-StoreThumbprint([string]$storeName) {
    $store = Open-Store -name $storeName -write $false
    try {
        return , @($store.Certificates | ForEach-Object { $_.Thumbprint.ToUpperInvariant() } | Sort-Object)
    }
    finally {
        $store.Close()
    }
}

function Add-Action([string]$thumbprint, [string]$store, [string]$action, [string]$detail) {
    $module.Result.actions.Add(@{ thumbprint = $thumbprint; store = $store; action = $action; detail = $detail })
    if ($action -ne 'unchanged' -and $action -ne 'reported' -and $action -ne 'kept_bound') {
        $module.Result.changed = $true
    }
}

function ConvertFrom-Pem([string]$pem) {
    $body = $pem -replace '-----(BEGIN|END) CERTIFICATE-----', '' -replace '\s', ''
    $bytes = [System.Convert]::FromBase64String($body)
    return New-Object -TypeName "$X509.X509Certificate2" -ArgumentList @(, $bytes)
}

function Add-PublicCertificate([string]$storeName, $entry) {
    # Intermediates and roots carry no key: imported from their PEM, checked against the planned thumbprint.
    $thumbprint = Format-Thumbprint $entry.thumbprint
    if ($null -ne (Find-Certificate -storeName $storeName -thumbprint $thumbprint)) {
        Add-Action -thumbprint $thumbprint -store $storeName -action 'unchanged' -detail $entry.subject
        return
    }
    if (-not $entry.pem) {
        $module.FailJson("The certificate $thumbprint ($($entry.subject)) for LocalMachine\$storeName has no pem")
    }
    $cert = ConvertFrom-Pem -pem $entry.pem
    if ($cert.Thumbprint.ToUpperInvariant() -ne $thumbprint) {
        $module.FailJson("The PEM given for $thumbprint has the thumbprint $($cert.Thumbprint): refusing to import it")
    }
    if (-not $checkMode) {
        $store = Open-Store -name $storeName -write $true
        try {
            $store.Add($cert)
        }
        finally {
            $store.Close()
        }
    }
    Add-Action -thumbprint $thumbprint -store $storeName -action 'added' -detail $entry.subject
}

function Get-PrivateKeyFile($cert) {
    # The file that holds the machine key: CNG keys under Crypto\Keys, CAPI keys under Crypto\RSA\MachineKeys.
    $dataDir = [System.Environment]::GetFolderPath('CommonApplicationData')
    $rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($cert)
    $key = $rsa
    if ($null -eq $key) {
        $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($cert)
    }
    if ($null -eq $key) {
        return $null
    }
    if ($key -is [System.Security.Cryptography.RSACryptoServiceProvider]) {
        $name = $key.CspKeyContainerInfo.UniqueKeyContainerName
        return Join-Path -Path $dataDir -ChildPath "Microsoft\Crypto\RSA\MachineKeys\$name"
    }
    $name = $key.Key.UniqueName
    return Join-Path -Path $dataDir -ChildPath "Microsoft\Crypto\Keys\$name"
}

function Grant-KeyRead($cert, [string]$identity) {
    $path = Get-PrivateKeyFile -cert $cert
    if ($null -eq $path -or -not (Test-Path -LiteralPath $path)) {
        $module.FailJson("The private key file of $($cert.Thumbprint) was not found: cannot grant read to $identity")
    }
    $acl = Get-Acl -LiteralPath $path
    $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $identity
    try {
        $sid = $account.Translate([System.Security.Principal.SecurityIdentifier])
    }
    catch {
        $module.FailJson("The identity '$identity' is not known on this host: $($_.Exception.Message)", $_)
    }
    $read = [System.Security.AccessControl.FileSystemRights]'Read'
    foreach ($rule in $acl.Access) {
        $ruleSid = $rule.IdentityReference.Translate([System.Security.Principal.SecurityIdentifier])
        if ($ruleSid -eq $sid -and $rule.AccessControlType -eq 'Allow' -and ($rule.FileSystemRights -band $read) -eq $read) {
            Add-Action -thumbprint $cert.Thumbprint -store 'My' -action 'unchanged' -detail "read for $identity"
            return
        }
    }
    if (-not $checkMode) {
        $rule = New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList $sid, $read, 'Allow'
        $acl.AddAccessRule($rule)
        Set-Acl -LiteralPath $path -AclObject $acl
    }
    Add-Action -thumbprint $cert.Thumbprint -store 'My' -action 'granted' -detail "read for $identity"
}

function Invoke-Repair([string]$thumbprint) {
    # certutil -repairstore links the certificate again to its key container when the association is lost
    # (Microsoft: "certutil -repairstore", used after importing a certificate without its key reference).
    if ($checkMode) {
        Add-Action -thumbprint $thumbprint -store 'My' -action 'repaired' -detail 'certutil -repairstore (check mode: not run)'
        return
    }
    $output = & certutil.exe -repairstore my $thumbprint 2>&1
    if ($LASTEXITCODE -ne 0) {
        $module.FailJson("certutil -repairstore my $thumbprint failed ($LASTEXITCODE): $($output -join ' ')")
    }
    Add-Action -thumbprint $thumbprint -store 'My' -action 'repaired' -detail 'certutil -repairstore'
}

function Get-BoundThumbprint {
    # Every thumbprint an IIS binding or an http.sys SSL entry uses (any 40-hex value of netsh's table:
    # its labels are localised, the values are not).
    $bound = @{}
    $dll = Join-Path -Path $env:windir -ChildPath 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (Test-Path -LiteralPath $dll) {
        Add-Type -Path $dll
        $manager = New-Object -TypeName Microsoft.Web.Administration.ServerManager
        try {
            foreach ($site in $manager.Sites) {
                foreach ($binding in $site.Bindings) {
                    if ($null -ne $binding.CertificateHash -and $binding.CertificateHash.Length -gt 0) {
                        $hex = ([System.BitConverter]::ToString([byte[]]$binding.CertificateHash)).Replace('-', '')
                        $bound[$hex.ToUpperInvariant()] = $site.Name
                    }
                }
            }
        }
        finally {
            $manager.Dispose()
        }
    }
    $output = & netsh.exe http show sslcert 2>&1
    foreach ($line in @($output)) {
        if ([string]$line -match '\b([0-9a-fA-F]{40})\b') {
            $hex = $Matches[1].ToUpperInvariant()
            if (-not $bound.ContainsKey($hex)) {
                $bound[$hex] = 'http.sys'
            }
        }
    }
    return $bound
}

function Remove-Certificate([string]$thumbprint) {
    $cert = Find-Certificate -storeName 'My' -thumbprint $thumbprint
    if ($null -eq $cert) {
        Add-Action -thumbprint $thumbprint -store 'My' -action 'unchanged' -detail 'not present'
        return
    }
    if (-not $checkMode) {
        # The key container goes with the certificate: a removed certificate must not leave its key behind.
        $keyFile = $null
        if ($cert.HasPrivateKey) {
            try {
                $keyFile = Get-PrivateKeyFile -cert $cert
            }
            catch {
                $module.Warn("The key of $thumbprint could not be located: $($_.Exception.Message)")
            }
        }
        $store = Open-Store -name 'My' -write $true
        try {
            $store.Remove($cert)
        }
        finally {
            $store.Close()
        }
        if ($null -ne $keyFile -and (Test-Path -LiteralPath $keyFile)) {
            Remove-Item -LiteralPath $keyFile -Force
        }
    }
    Add-Action -thumbprint $thumbprint -store 'My' -action 'removed' -detail $cert.Subject
}

function Import-Pfx([string]$path, [string]$passphrase, [string]$thumbprint) {
    # MachineKeySet: the key goes to the machine's key store, where the IIS worker and http.sys can use it;
    # a key in a user profile makes the binding fail with "A specified logon session does not exist".
    # PersistKeySet keeps it after this process ends; Exportable only when asked.
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'MachineKeySet, PersistKeySet'
    if ($p.key_exportable) {
        $flags = $flags -bor [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'Exportable'
    }
    $collection = New-Object -TypeName "$X509.X509Certificate2Collection"
    try {
        $collection.Import($path, $passphrase, $flags)
    }
    catch {
        $message = $_.Exception.Message
        if ($message -match 'network password') {
            # Windows Server 2016 and older read only 3DES/SHA-1 PFX files and report an AES-256 one this way.
            $module.FailJson(("Windows refused the PFX $path ($message): Windows Server 2016 and older cannot read AES-256 " +
                    "PFX files; use iis_ssl_pfx_encryption=compatible for this host (or the passphrase is wrong)"), $_)
        }
        $module.FailJson("Windows could not read the PFX ${path}: $message", $_)
    }
    $leaf = $null
    foreach ($cert in $collection) {
        if ($cert.Thumbprint.ToUpperInvariant() -eq $thumbprint) {
            $leaf = $cert
        }
    }
    if ($null -eq $leaf) {
        $found = ($collection | ForEach-Object { $_.Thumbprint }) -join ', '
        $module.FailJson("The PFX $path does not hold the certificate $thumbprint (it holds: $found)")
    }
    if (-not $leaf.HasPrivateKey) {
        $module.FailJson("The PFX $path holds the certificate $thumbprint without its private key")
    }
    $store = Open-Store -name 'My' -write $true
    try {
        # Only the leaf goes into My: a CA certificate there is picked by chain building in place of the CA store's.
        $store.Add($leaf)
    }
    finally {
        $store.Close()
    }
    foreach ($cert in $collection) {
        if ($cert.Thumbprint.ToUpperInvariant() -ne $thumbprint) {
            $module.Warn("The PFX held $($cert.Subject) besides the leaf: not imported (intermediates go to CA from the plan)")
        }
    }
}

$diffBefore = @{}
$diffAfter = @{}
foreach ($name in @('My', 'CA', 'Root')) {
    $diffBefore[$name] = Get-StoreThumbprint -storeName $name
}

try {
    if ($p.state -eq 'absent') {
        $bound = $null
        foreach ($item in $p.thumbprints) {
            $thumbprint = Format-Thumbprint $item
            if ($null -eq $bound) {
                $bound = Get-BoundThumbprint
            }
            if ($bound.ContainsKey($thumbprint)) {
                # Never a certificate still in use: it stays, and the run says so.
                $module.Result.kept_bound.Add($thumbprint)
                Add-Action -thumbprint $thumbprint -store 'My' -action 'kept_bound' -detail "still bound ($($bound[$thumbprint]))"
                $module.Warn("$thumbprint is still bound ($($bound[$thumbprint])): not removed")
                continue
            }
            Remove-Certificate -thumbprint $thumbprint
        }
    }
    else {
        $thumbprint = Format-Thumbprint $p.thumbprint
        $module.Result.thumbprint = $thumbprint
        $existing = Find-Certificate -storeName 'My' -thumbprint $thumbprint
        $repair = @($p.repair | ForEach-Object { Format-Thumbprint $_ })
        if ($null -ne $existing -and ($existing.HasPrivateKey -or $repair -contains $thumbprint)) {
            Add-Action -thumbprint $thumbprint -store 'My' -action 'unchanged' -detail $existing.Subject
        }
        elseif ($null -eq $existing -or -not $existing.HasPrivateKey) {
            # In check mode the copy before this step did not run: a named PFX is enough.
            if (-not $p.pfx_path -or (-not $checkMode -and -not (Test-Path -LiteralPath $p.pfx_path))) {
                $what = if ($null -eq $existing) { 'is not in LocalMachine\My' } else { 'has no private key in LocalMachine\My' }
                $module.FailJson("The certificate $thumbprint $what and no PFX was given (pfx_path) to import it from")
            }
            if (-not $checkMode) {
                Import-Pfx -path $p.pfx_path -passphrase $p.pfx_passphrase -thumbprint $thumbprint
            }
            Add-Action -thumbprint $thumbprint -store 'My' -action 'imported' -detail 'machine key storage'
        }

        foreach ($item in $repair) {
            if ($null -ne (Find-Certificate -storeName 'My' -thumbprint $item)) {
                Invoke-Repair -thumbprint $item
            }
        }

        foreach ($entry in $p.intermediates) {
            Add-PublicCertificate -storeName 'CA' -entry $entry
        }
        if ($null -ne $p.root) {
            Add-PublicCertificate -storeName 'Root' -entry $p.root
        }
        foreach ($entry in $p.conflicting_roots) {
            $conflict = Format-Thumbprint $entry.thumbprint
            $cert = Find-Certificate -storeName 'Root' -thumbprint $conflict
            if ($null -eq $cert) {
                continue
            }
            $text = "a root with the same name as the chain's root ($($cert.Subject), $conflict, until $($cert.NotAfter.ToString('yyyy-MM-dd')))"
            if ($entry.action -eq 'remove') {
                if (-not $checkMode) {
                    $store = Open-Store -name 'Root' -write $true
                    try {
                        $store.Remove($cert)
                    }
                    finally {
                        $store.Close()
                    }
                }
                Add-Action -thumbprint $conflict -store 'Root' -action 'removed' -detail $text
            }
            else {
                $module.Result.reported_roots.Add(@{ thumbprint = $conflict; subject = $cert.Subject })
                Add-Action -thumbprint $conflict -store 'Root' -action 'reported' -detail $text
                $module.Warn("LocalMachine\Root holds $text; it can make Windows build an old chain (not removed)")
            }
        }

        # The check that matters for IIS: the certificate in My must reach its key.
        if (-not $checkMode) {
            $cert = Find-Certificate -storeName 'My' -thumbprint $thumbprint
            if ($null -ne $cert -and -not $cert.HasPrivateKey -and $repair -notcontains $thumbprint) {
                Invoke-Repair -thumbprint $thumbprint
                $cert = Find-Certificate -storeName 'My' -thumbprint $thumbprint
            }
            if ($null -eq $cert -or -not $cert.HasPrivateKey) {
                $module.FailJson(("The certificate $thumbprint in LocalMachine\My has no usable private key (HasPrivateKey false, " +
                        "also after certutil -repairstore); a binding to it fails with 'A specified logon session does not exist'. " +
                        "Import the PFX again with machine key storage."))
            }
            $module.Result.has_private_key = $true
            if ($p.app_pool_identity) {
                Grant-KeyRead -cert $cert -identity $p.app_pool_identity
            }
        }
        elseif ($p.app_pool_identity -and $null -ne $existing -and $existing.HasPrivateKey) {
            Grant-KeyRead -cert $existing -identity $p.app_pool_identity
        }
    }
}
finally {
    # The copied PFX (key inside) never stays on the host, whatever happened.
    if ($p.remove_pfx -and $p.pfx_path -and -not $checkMode -and (Test-Path -LiteralPath $p.pfx_path)) {
        Remove-Item -LiteralPath $p.pfx_path -Force
        $module.Result.pfx_removed = $true
    }
}

foreach ($name in @('My', 'CA', 'Root')) {
    $diffAfter[$name] = Get-StoreThumbprint -storeName $name
}
if ($checkMode) {
    # Nothing was written: the after state is what the actions would make of the before state.
    foreach ($action in $module.Result.actions) {
        $list = [System.Collections.Generic.List[String]]@($diffAfter[$action.store])
        if ($action.action -in @('added', 'imported') -and -not $list.Contains($action.thumbprint)) {
            $list.Add($action.thumbprint)
        }
        elseif ($action.action -eq 'removed') {
            [void]$list.Remove($action.thumbprint)
        }
        $diffAfter[$action.store] = @($list | Sort-Object)
    }
}
$module.Diff.before = $diffBefore
$module.Diff.after = $diffAfter
$module.ExitJson()
