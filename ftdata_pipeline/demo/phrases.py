"""Text banks for the demo data: templates with ``{slot}`` placeholders, per support category.

The fictional company is Acme Cloud (SaaS products plus a line of network hardware). Slots are
filled by ``ftdata_pipeline.demo.generate``; every name, number and address there is synthetic.
"""

from __future__ import annotations

CATEGORIES = (
    "billing",
    "technical_issue",
    "account_access",
    "shipping",
    "cancellation",
    "feature_request",
    "bug_report",
    "security",
)

SAAS_PRODUCTS = (
    "Acme Cloud Storage",
    "Acme Compute",
    "Acme Backup",
    "Acme Analytics",
    "Acme Mail",
    "Acme Sync",
)
HARDWARE_PRODUCTS = (
    "Acme Edge Router X2",
    "Acme Home Hub",
    "Acme NAS 4-Bay",
    "Acme SmartCam 3",
    "Acme Mesh Extender",
)
CHANNELS = ("email", "web_form", "chat_widget", "phone_transcript", "mobile_app")
PLANS = ("Starter", "Team", "Business", "Enterprise")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
CARRIERS = ("UPS", "FedEx", "DHL", "USPS")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
SYSTEMS = ("Windows 11", "macOS Sonoma", "Ubuntu 24.04", "iOS 18", "Android 15")
ERRORS = (
    "ERR_SYNC_409",
    "E1042 quota exceeded",
    "HTTP 502 Bad Gateway",
    "TLS handshake failed",
    "error 0x80070005",
    "DISK_DEGRADED",
    "timeout after 30s",
    "AUTH_TOKEN_EXPIRED",
)
FEATURES = (
    "dark mode in the web console",
    "SAML single sign-on for the Team plan",
    "exporting usage reports as CSV",
    "scheduling backups by the minute",
    "a Linux client for Acme Sync",
    "webhooks when a camera detects motion",
    "per-folder sharing permissions",
    "an API endpoint to rotate access keys",
    "bandwidth limits per device on the router",
    "two-factor authentication with hardware keys",
)

# Luhn-valid card numbers that payment processors publish for testing.
TEST_CARDS = (
    "4111111111111111",
    "4012888888881881",
    "4242424242424242",
    "5555555555554444",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "5200828282828210",
)

GREETINGS = (
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hello Acme support,",
    "Good morning,",
    "Dear Acme Cloud team,",
    "Hey,",
    "To whom it may concern,",
    "",
    "",
)
CLOSINGS = (
    "Thanks in advance.",
    "Thank you for your help.",
    "Please let me know as soon as possible.",
    "Looking forward to your reply.",
    "This is urgent for us, thanks.",
    "Appreciate any help.",
    "Regards,",
    "Best,",
    "Cheers,",
    "",
)

# A scenario keeps subject, customer message and agent reply about the same problem:
# (subjects, customer cores, reply). ``{hw}`` / ``{saas}`` pick the product line.
Scenario = tuple[tuple[str, ...], tuple[str, ...], str]
SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "billing": (
        (("Charged twice for {plan} plan", "Duplicate charge", "Refund request"),
         ("I was charged twice for the {plan} plan this month. My bank statement shows two payments of {amount} on {date}. Can you refund the duplicate charge?",
          "There are two identical charges of {amount} for {saas} on my card from {date}. Please refund one of them."),
         "Hi {first}, thanks for reaching out. I checked your account and confirmed the duplicate charge of {amount}. I've issued a refund; it should appear on your statement within 5-10 business days. Best, {agent}"),
        (("Question about invoice {invoice}", "Wrong number of seats on invoice"),
         ("Invoice {invoice} lists {count} seats but we only have {count2} users in the account. Please correct the invoice and send an updated copy.",),
         "Hello {first}, you're right, the seat count was not updated after your last change. I've corrected invoice {invoice} and sent the new version to the billing contact. {agent}, Acme Cloud Billing"),
        (("Payment failed but money was taken", "Failed payment"),
         ("My payment failed on {date} but the money still left my account. I don't want to be charged again when it retries.",),
         "Hi {first}, the failed payment was reversed by our processor and should be back in your account within a few days. I've paused the automatic retry so you won't be charged twice. Thanks, {agent}"),
        (("Why did my bill go up?", "Unexpected charge of {amount}", "Overcharged this month"),
         ("Our monthly bill went from {amount2} to {amount} without any change on our side. Could you explain what the extra charges are for?",
          "I see a charge of {amount} labelled ACME*CLOUD that I don't recognize. Which service is this for?"),
         "Hi {first}, the difference comes from storage used above your {plan} allowance. You can see the breakdown under Billing > Usage, and I'm happy to help you pick a plan that fits better. Regards, {agent}"),
        (("Wrong VAT on invoice", "VAT charged in error"),
         ("We are a registered business in the EU and VAT should not have been added to invoice {invoice}. Our VAT number is on the account.",),
         "Hello {first}, the VAT number was not validated when the invoice was created. I've validated it now and issued a credit note for the VAT on invoice {invoice}. {agent}"),
        (("Switch to annual billing", "Annual plan discount"),
         ("Can you switch our billing from monthly to annual? We were told there is a discount on annual plans.",),
         "Hi {first}, I've switched the account to annual billing with the 15% discount, starting from the next billing cycle. {agent}"),
        (("Card expired, invoice still unpaid", "Payment overdue warning"),
         ("Our card expired and now the account says payment overdue. I updated the card but the invoice still shows unpaid.",),
         "Hi {first}, thanks for updating the card. I've retried the payment for the open invoice and it went through, so the overdue warning is gone. {agent}"),
    ),
    "technical_issue": (
        (("{saas} not syncing", "Getting {error}", "Sync keeps failing"),
         ("{saas} stopped syncing on {date}. The client shows {error} and nothing I try fixes it.",
          "Our nightly job in {saas} fails with {error} after about ten minutes. It ran fine for months."),
         "Hi {first}, sorry about the trouble. Please update the client to the latest version and sign out and back in; this clears the stale sync token that causes {error}. If it persists, send us the log from Settings > Diagnostics. {agent}"),
        (("{hw} keeps disconnecting", "Connection drops every few minutes", "Device offline since yesterday"),
         ("My {hw} keeps dropping the connection every few minutes. I already restarted it and updated the firmware to {version}.",
          "The mobile app says the {hw} is offline, but the device itself is on and the lights are normal.",
          "After the last update the {hw} no longer shows up on my network. Other devices can still connect to Wi-Fi."),
         "Hi {first}, please hold the reset button for 10 seconds until the light blinks white, then add the {hw} again from the app. This re-registers the device and fixes most connection drops. Best, {agent}"),
        (("Uploads stuck at 99%", "Large files won't upload to {saas}"),
         ("Uploads to {saas} are stuck at 99% for files larger than 2 GB. Smaller files work fine.",),
         "Hi {first}, files over 2 GB need multipart uploads. Turn them on under Settings > Transfers and retry; the uploads will no longer stall at 99%. {agent}"),
        (("Service unavailable in {region}", "Errors from {region}"),
         ("Since this morning the {region} region returns {error} for every request from our servers.",),
         "Hello {first}, we had a service degradation in {region} this morning which is now resolved. Please retry and let us know if you still see errors. {agent}, Acme Cloud Support"),
        (("Help with setup of {hw}", "{hw} setup doesn't finish"),
         ("I followed the setup guide for the {hw} but the status light stays orange and the app can't find the device.",),
         "Hi {first}, an orange light means the {hw} has no internet connection yet. Connect it to your router with the included cable, wait for the light to turn white and run setup again. {agent}"),
        (("{saas} is extremely slow", "Console very slow"),
         ("The {saas} web console is very slow, pages take more than a minute to load on {browser} and {os}.",
          "Restores from {saas} are much slower than they used to be, around {count} MB per minute."),
         "Hello {first}, thanks for the details. I can see slow responses for your account and have escalated this to our engineering team; I'll update you within 24 hours. {agent}"),
    ),
    "account_access": (
        (("Can't log in", "Wrong password after reset", "Account disabled?"),
         ("I can't log in to my account. It says my password is wrong even after I reset it twice.",
          "My account got disabled after too many login attempts. Can you unlock it?"),
         "Hi {first}, your account was locked after repeated attempts. I've unlocked it and sent a new password reset link, which expires in 30 minutes. {agent}, Acme Cloud Support"),
        (("Lost my 2FA phone", "Verification code not working"),
         ("I lost the phone I used for two-factor authentication and now I'm locked out of the console.",
          "The six-digit verification code from the authenticator app is always rejected."),
         "Hello {first}, to reset two-factor authentication we need to verify your identity. Please reply from the account email and confirm the last four digits of the card on file, then I'll reset it for you. {agent}"),
        (("Password reset email never arrives",),
         ("The password reset email never arrives. I checked spam and waited over an hour.",),
         "Hi {first}, your mail provider was delaying our messages. I've resent the reset email from our backup sender; it should arrive within a few minutes. Best, {agent}"),
        (("Login loop on {browser}",),
         ("When I sign in on {browser} the page just reloads back to the login screen.",),
         "Hi {first}, clearing cookies for acmecloud.example fixes the login loop in most cases. If it continues, please try a private window and let me know. {agent}"),
        (("Transfer account ownership", "Need to change account email"),
         ("Our admin left the company and we need to transfer ownership of the account to me.",
          "I need to change the email on my account because I left my old company."),
         "Hello {first}, ownership and email changes need written confirmation from the current owner or a company officer. I've emailed you the form; once it's signed we'll make the change the same day. {agent}"),
        (("Can't access admin console", "SSO broke our logins"),
         ("I can log in to the app but the admin console says I don't have permission, even though I'm the owner.",
          "I set up single sign-on yesterday and now nobody on the team can log in."),
         "Hi {first}, the single sign-on setup mapped everyone to the Member role. I've restored your owner role; you can fix the role mapping under Security > SSO. {agent}"),
    ),
    "shipping": (
        (("Where is my order {order}?", "Order {order} delayed", "Tracking number not updating"),
         ("I ordered the {hw} on {date} (order {order}) and it still hasn't arrived. The tracking page hasn't updated in {days} days.",
          "My order {order} was supposed to arrive by {date} and I paid for express shipping."),
         "Hi {first}, I'm sorry your order is late. {carrier} confirms the parcel is in transit and it should arrive within 2 business days. I've refunded the express shipping fee. Best, {agent}"),
        (("{hw} arrived damaged", "Broken on arrival"),
         ("The {hw} arrived today with a cracked case. The box was also damaged. I'd like a replacement.",),
         "Hello {first}, sorry the {hw} arrived damaged. I've created a replacement order and emailed you a prepaid return label for the broken unit. {agent}"),
        (("Wrong item shipped",),
         ("I received a {product2} instead of the {hw} I ordered. Order number {order}.",),
         "Hi {first}, apologies for the mix-up. The correct {hw} ships today, and you can return the other item with the prepaid label I've emailed you. {agent}"),
        (("Change shipping address for {order}",),
         ("Can you change the delivery address for order {order}? I'm moving next week.",
          "I need the {hw} delivered to our office instead of my home address."),
         "Hi {first}, I've updated the delivery address on order {order}. You'll receive a new confirmation email shortly. {agent}"),
        (("Package not delivered", "Delivery marked as complete but nothing arrived"),
         ("The {carrier} tracking number {tracking} says delivered but there was no package at my door.",
          "Order {order} shows as shipped but {carrier} says they never received the parcel."),
         "Hi {first}, we've opened an investigation with {carrier}. If the package isn't found within 3 days we'll ship a replacement at no cost. {agent}"),
        (("Missing power adapter in box",),
         ("The {hw} box was missing the power adapter and the quick start guide.",),
         "Hello {first}, the missing adapter and guide are on their way by express shipping. Apologies for the inconvenience. {agent}"),
    ),
    "cancellation": (
        (("Cancel my subscription", "How do I cancel?", "Request to end service"),
         ("Please cancel my {plan} subscription at the end of the current billing period.",
          "How do I cancel? I can't find the option anywhere in the settings."),
         "Hi {first}, your subscription has been cancelled and stays active until the end of the current billing period. You won't be charged again. For the future, the option is under Billing > Subscription. {agent}"),
        (("Please close my account", "Unsubscribe and delete my data"),
         ("I'd like to close my account and have all my data deleted.",),
         "Hello {first}, I'm sorry to see you go. Your account is scheduled for closure and all data will be deleted within 30 days; you'll get a confirmation email when it's done. {agent}"),
        (("Cancel order {order}",),
         ("I want to cancel order {order} before it ships.",),
         "Hi {first}, order {order} has been cancelled before shipping and a full refund has been issued. {agent}"),
        (("Stop auto-renewal",),
         ("Please turn off auto-renewal. I was not aware the plan renews automatically.",),
         "Hi {first}, auto-renewal is now turned off. You can turn it back on at any time under Billing. {agent}"),
        (("Downgrade from {plan}",),
         ("We want to downgrade from {plan} to Starter instead of cancelling completely.",),
         "Hello {first}, I've downgraded the account to Starter, effective at the next renewal. Your data stays as it is. {agent}"),
        (("Cancel {saas} trial", "Terminate contract"),
         ("I signed up for the {saas} trial and want to cancel before I am charged.",
          "We are moving to another provider and need to cancel {saas} for our whole team."),
         "Hi {first}, I've cancelled {saas} on your account, so no further charges will be made. Your files stay available to download for 30 days. {agent}"),
    ),
    "feature_request": (
        (("Feature request: {feature}", "Would love {feature}", "Please add {feature}"),
         ("It would be great to have {feature}. We manage a lot of devices and this would save us time.",
          "I love {saas} but it really needs {feature}. Happy to beta test.",
          "Small suggestion: {feature} would make {saas} much easier to use."),
         "Hi {first}, thanks for the suggestion! I've passed it to our product team and added your vote to the request. {agent}"),
        (("Any plans for {feature}?", "Roadmap question"),
         ("Are there any plans to support {feature}? Several people on my team have asked for it.",
          "Our security team requires {feature} before we can roll out {saas} company-wide."),
         "Hello {first}, good news: {feature} is on our roadmap for next quarter. I'll let you know as soon as it's available. {agent}"),
        (("Missing feature in {saas}", "Idea to improve {saas}"),
         ("Could you add {feature}? Right now we have to work around it with scripts.",),
         "Hi {first}, we don't support that yet, but a scheduled script using our API is the recommended workaround for now. I've logged your request with the product team. {agent}"),
    ),
    "bug_report": (
        (("Bug: {saas} crashes on start", "Bug in {saas} {version}"),
         ("{saas} {version} crashes every time I open the settings page. It worked in the previous version.",
          "The app crashes on {os} when I upload a folder with more than {count} files."),
         "Hi {first}, thanks for the detailed report. We reproduced the crash and a fix is planned for the next release. {agent}"),
        (("Firmware {version} breaks Wi-Fi",),
         ("After updating the {hw} to firmware {version} the 5 GHz network disappears.",),
         "Hello {first}, this is a known issue in firmware {version}. Rolling back from Settings > Firmware avoids it until the fix ships. {agent}"),
        (("Dashboard shows wrong numbers", "Export produces empty file", "Timezone bug in reports"),
         ("The usage dashboard shows {count} GB but the actual usage is much lower. The numbers seem doubled.",
          "Exporting a report to CSV produces an empty file with only the header row.",
          "Times in the activity log are shown in UTC even though my profile is set to a different timezone."),
         "Hi {first}, I've filed this with engineering. Could you send a screenshot and the app logs so we can confirm the cause? {agent}"),
        (("Broken link in the console", "UI glitch on {browser}"),
         ("The link to the API documentation in the console gives a 404 page.",
          "On {browser} the Save button in the console is hidden behind the footer so I can't save changes."),
         "Hi {first}, thanks for flagging this. The fix has been deployed; please reload the console. {agent}"),
    ),
    "security": (
        (("Suspicious login on my account", "Account compromised?", "Someone changed my password"),
         ("I got an email about a new login from a country I've never been to. I did not sign in.",
          "Someone changed my password and the recovery email. I still have access to the old email.",
          "I see unauthorized charges and a login I didn't make on {date}."),
         "Hi {first}, I've signed out all sessions, reset your password and enabled login alerts. Please set up two-factor authentication as soon as you can. {agent}, Acme Cloud Security"),
        (("Phishing email pretending to be Acme",),
         ("I received an email pretending to be Acme asking me to confirm my card details. Is this phishing?",),
         "Hello {first}, that email is a phishing attempt and not from Acme; we never ask for card details by email. Please don't click any links. We've reported the sender. {agent}"),
        (("Strange API activity",),
         ("Our API keys are being used from an IP we don't own. We need to revoke them immediately.",),
         "Hi {first}, I've revoked the affected API keys. Please create new keys and review the access log under Security > Activity. {agent}"),
        (("Unknown device connected to {hw}", "Security concern about {hw}"),
         ("There is an unknown device connected to my {hw} that I don't recognize.",
          "My {hw} camera turned on by itself at night. I'm worried someone has access."),
         "Hi {first}, I've removed all shared access to your {hw}. Please change your Wi-Fi and account passwords and turn on two-factor authentication. {agent}"),
        (("Report a vulnerability", "Was my data breached?"),
         ("I think I found a vulnerability in the {saas} web console. Who should I report it to?",
          "Was my data affected by the security incident mentioned in the news?"),
         "Hello {first}, thank you for contacting us. Our security team will reply through our disclosure program within one business day. {agent}"),
    ),
}

DETAILS: dict[str, tuple[str, ...]] = {
    "billing": (
        "The account is on the {plan} plan and billed monthly.",
        "This is the second time this has happened in {days} days.",
        "Our finance team needs this sorted before the end of the month.",
        "I've attached a screenshot of the statement.",
    ),
    "technical_issue": (
        "I'm on {os} using the latest client.",
        "We are in the {region} region.",
        "I already tried restarting the device and reinstalling the app.",
        "The issue started right after the maintenance window on {date}.",
        "About {count} users in our office are affected.",
    ),
    "account_access": (
        "I've been a customer for {days} days and never had this problem.",
        "I tried on {browser} and in a private window.",
        "I need access today because our backups are configured there.",
        "I still have access to my email inbox.",
    ),
    "shipping": (
        "The shipping confirmation came from {carrier}.",
        "I've been waiting for {days} days now.",
        "I need it before {date} for an installation.",
        "Nobody at the address received a delivery notice.",
    ),
    "cancellation": (
        "We are not unhappy, we just don't need it anymore.",
        "Please confirm by email once it is done.",
        "The price increase was too much for our small team.",
        "I don't want to be charged again after {date}.",
    ),
    "feature_request": (
        "Thanks for a great product otherwise.",
        "We have about {count} users who would use this.",
        "Even a basic version would help.",
    ),
    "bug_report": (
        "Steps to reproduce: open the page, click the button, wait a few seconds.",
        "I can reproduce it every time on {os}.",
        "Clearing the cache did not help.",
        "The version number shown in About is {version}.",
    ),
    "security": (
        "I have already changed my password just in case.",
        "Please treat this as urgent.",
        "I enabled two-factor authentication after this happened.",
        "I can forward the suspicious email if that helps.",
    ),
}

# Sentences that carry PII; which one a ticket gets depends on its category.
PII_SENTENCES: dict[str, tuple[str, ...]] = {
    "phone": (
        "You can reach me at {phone}.",
        "Please call me back on {phone}, I'm available after 2pm.",
        "My mobile number is {phone} if that's easier.",
    ),
    "email": (
        "Please reply to {email2} instead of the address on file.",
        "My account email is {email2}.",
    ),
    "card": (
        "The card on file is {card}, expiry {expiry}.",
        "I paid with my card ending {card_last4} (full number {card}).",
        "Please refund to card {card}.",
    ),
    "address": (
        "My address is {address}.",
        "Ship it to {address} please.",
        "The delivery address on the order is {address}.",
    ),
    "iban": (
        "For the refund our IBAN is {iban}.",
        "Please transfer the money to IBAN {iban}.",
    ),
    "ssn": (
        "For verification, my SSN is {ssn}.",
        "If you need to verify my identity my social security number is {ssn}.",
    ),
    "ip": (
        "The login came from IP address {ip}.",
        "Our server's public IP is {ip}.",
    ),
    "name": (
        "The account is registered to {name2}.",
        "My colleague {name2} can also approve this.",
    ),
}
PII_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "billing": ("card", "card", "iban", "phone", "email", "address"),
    "technical_issue": ("ip", "phone", "email", "name"),
    "account_access": ("phone", "email", "ssn", "ip", "name"),
    "shipping": ("address", "address", "phone", "email"),
    "cancellation": ("card", "iban", "email", "phone", "address"),
    "feature_request": ("email", "name"),
    "bug_report": ("ip", "email"),
    "security": ("ip", "ip", "ssn", "card", "phone", "email"),
}

# Junk planted so the curate stage has something to drop.
BOILERPLATE = (
    "Sent from my iPhone",
    "Sent from my Galaxy",
    "Get Outlook for Android",
    "Sent from Mail for Windows",
    "Automatic reply: out of office",
    "-- \nSent from my iPad",
)
TOO_SHORT = ("help", "?", "Help!!", "hello?", "test", "asap", "pls", "...", "hi")
JUNK_SUBJECTS = ("", "(no subject)", "Re:", "help", "Fwd:", "urgent")

FOREIGN: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    # language -> (category, subject, body, reply)
    "es": (
        ("billing", "Cobro duplicado", "Hola, me han cobrado dos veces la suscripción {plan} este mes. El importe es {amount}. ¿Pueden devolverme el cargo duplicado? Gracias, {name}", "Hola {first}, hemos reembolsado el cargo duplicado. Saludos, {agent}"),
        ("shipping", "Pedido {order} no ha llegado", "Buenos días, hice el pedido {order} hace {days} días y todavía no ha llegado. Mi dirección es {address}. Un saludo, {name}", "Hola {first}, el paquete está en tránsito y llegará en dos días. {agent}"),
        ("account_access", "No puedo iniciar sesión", "No puedo entrar en mi cuenta, el código de verificación no funciona. Mi teléfono es {phone}. {name}", "Hola {first}, hemos desbloqueado su cuenta. {agent}"),
        ("cancellation", "Cancelar suscripción", "Quiero cancelar mi suscripción de {saas} al final del mes. Gracias. {name}", "Hola {first}, su suscripción ha sido cancelada. {agent}"),
        ("technical_issue", "El dispositivo no funciona", "Mi {hw} se desconecta cada pocos minutos desde la última actualización. Ya lo he reiniciado varias veces. {name}", "Hola {first}, por favor reinicie el dispositivo de fábrica y vuelva a configurarlo. {agent}"),
    ),
    "de": (
        ("billing", "Falsche Rechnung", "Guten Tag, auf der Rechnung {invoice} wurden {count} Lizenzen berechnet, wir nutzen aber nur {count2}. Bitte korrigieren Sie die Rechnung. Unsere IBAN lautet {iban}. Mit freundlichen Grüßen, {name}", "Hallo {first}, wir haben die Rechnung korrigiert. Viele Grüße, {agent}"),
        ("technical_issue", "Synchronisierung schlägt fehl", "Hallo, seit gestern funktioniert die Synchronisierung mit {saas} nicht mehr. Es erscheint die Meldung {error}. Können Sie helfen? {name}", "Hallo {first}, bitte aktualisieren Sie den Client auf die neueste Version. {agent}"),
        ("shipping", "Lieferung beschädigt", "Der {hw} ist heute mit einem gebrochenen Gehäuse angekommen. Bitte senden Sie Ersatz an {address}. {name}", "Hallo {first}, wir schicken Ihnen ein Ersatzgerät. {agent}"),
        ("security", "Verdächtige Anmeldung", "Ich habe eine Anmeldung von der IP-Adresse {ip} bemerkt, die nicht von mir stammt. Bitte sperren Sie mein Konto. {name}", "Hallo {first}, wir haben alle Sitzungen beendet. {agent}"),
        ("cancellation", "Kündigung", "Hiermit kündige ich meinen Vertrag für {saas} zum nächstmöglichen Zeitpunkt. Bitte bestätigen Sie die Kündigung schriftlich. {name}", "Hallo {first}, Ihre Kündigung ist bestätigt. {agent}"),
    ),
    "fr": (
        ("billing", "Double facturation", "Bonjour, j'ai été débité deux fois de {amount} pour mon abonnement {plan}. Pouvez-vous me rembourser ? Merci, {name}", "Bonjour {first}, le remboursement a été effectué. Cordialement, {agent}"),
        ("account_access", "Compte bloqué", "Bonjour, mon compte est bloqué après plusieurs tentatives de connexion. Vous pouvez me joindre au {phone}. {name}", "Bonjour {first}, votre compte a été débloqué. {agent}"),
        ("shipping", "Colis non reçu", "Bonjour, ma commande {order} est indiquée comme livrée mais je n'ai rien reçu à l'adresse {address}. {name}", "Bonjour {first}, nous avons ouvert une enquête auprès du transporteur. {agent}"),
        ("feature_request", "Suggestion", "Bonjour, serait-il possible d'ajouter {feature} à {saas} ? Ce serait très utile pour notre équipe. {name}", "Bonjour {first}, merci pour votre suggestion ! {agent}"),
        ("bug_report", "Bogue dans l'application", "L'application {saas} plante à chaque fois que j'ouvre les paramètres depuis la version {version}. {name}", "Bonjour {first}, le problème sera corrigé dans la prochaine version. {agent}"),
    ),
}
FOREIGN_LOCALES = {"es": "es_ES", "de": "de_DE", "fr": "fr_FR"}

# Near-duplicate edits: (old, new) word swaps a customer might make when re-sending.
NEAR_DUP_SWAPS = (
    ("I can't", "I cannot"),
    ("I'm", "I am"),
    (" don't ", " do not "),
    ("Please", "Could you please"),
    (" still ", " really still "),
    ("issue", "problem"),
    ("account", "acct"),
    ("immediately", "right away"),
    (" and ", " & "),
    ("ordered", "bought"),
)
NEAR_DUP_ADDITIONS = (
    "Any update would be appreciated.",
    "Sending this again as I didn't hear back.",
    "Following up on my earlier message.",
    "Still waiting on this.",
)

# Chat transcripts: short openers, agent prompts, and closings.
# (agent asks, customer answers) and (customer follows up, agent answers) exchanges.
CHAT_DETAILS = (
    ("Thanks for contacting Acme Cloud, {first}! I can help with that. Could you confirm the email address on the account?", "sure, it's {email}"),
    ("Hi {first}, sorry to hear that. Can you share your order number so I can look it up?", "it's order {order}, shipped to {address}"),
    ("Hello! I'm {agent} and I'll help you today. Can you tell me when this started?", "it started on {date}, after the update"),
    ("Thanks, {first}. To verify the account, could you give me the phone number we have on file?", "my number is {phone}"),
    ("Happy to help. For verification, what are the last four digits of the card on the account?", "the card I used ends in {card_last4}"),
    ("Thanks for waiting. Can you confirm your full name and the account email?", "my name is {name}, account email {email}"),
    ("Could you tell me which network you're connecting from?", "I'm on the office network, public IP {ip} if that matters"),
)
CHAT_FOLLOWUPS = (
    ("ok that worked, thanks!", "You're welcome! Is there anything else I can help you with today?"),
    ("great, thank you", "Glad I could help! Anything else today?"),
    ("one more thing, will I get an email confirmation?", "Yes, you'll receive a confirmation email within a few minutes. Anything else?"),
    ("that's fine, how long will it take?", "It usually takes 1-2 business days. I'll keep the ticket open until then."),
    ("hmm, still not working", "Let's try one more step: please restart and check again. If it still fails I'll escalate it to our engineers today."),
)
CUSTOMER_ENDS = ("no that's all, thanks", "all good, bye", "thanks, have a nice day", "ok")
SYSTEM_TURNS = (
    "Conversation started from the {product} help page. Customer authenticated: yes.",
    "Chat routed to tier 1 support. Customer plan: {plan}.",
    "Visitor started chat from the mobile app. Language: en.",
)

# Questions for rankings, evaluation set and production queries.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "billing": (
        "How do I get a refund for a duplicate charge on my {plan} plan?",
        "Why was I charged more than usual this month for {saas}?",
        "How can I download a copy of my invoice?",
        "Can I switch from monthly to annual billing?",
        "How do I update the credit card on my account?",
    ),
    "technical_issue": (
        "What should I do when {saas} shows {error}?",
        "How do I reset my {hw} to factory settings?",
        "Why are my uploads to {saas} stuck at 99%?",
        "My {hw} keeps disconnecting from Wi-Fi. How do I fix it?",
        "How do I speed up restores from {saas}?",
    ),
    "account_access": (
        "How do I reset my password if the reset email never arrives?",
        "I lost my two-factor authentication device. How do I get back into my account?",
        "How do I transfer ownership of my Acme Cloud account?",
        "Why does the login page keep reloading on {browser}?",
        "How do I change the email address on my account?",
    ),
    "shipping": (
        "Where can I track my {hw} order?",
        "What do I do if my {hw} arrived damaged?",
        "Can I change the delivery address after ordering?",
        "My package shows delivered but I didn't receive it. What now?",
        "How long does express shipping take?",
    ),
    "cancellation": (
        "How do I cancel my {plan} subscription?",
        "How do I turn off auto-renewal?",
        "Will my data be deleted if I close my account?",
        "Can I cancel an order before it ships?",
        "Can I downgrade instead of cancelling?",
    ),
    "feature_request": (
        "Does {saas} support {feature}?",
        "How can I request a new feature?",
        "Is there a way to get {feature} today?",
    ),
    "bug_report": (
        "{saas} crashes when I open settings. Is this a known bug?",
        "Why is my CSV export empty?",
        "How do I report a bug in {product}?",
        "Firmware {version} broke my 5 GHz network. How do I roll back?",
    ),
    "security": (
        "I received a login alert I don't recognize. What should I do?",
        "How can I tell if an email from Acme is phishing?",
        "How do I revoke an API key that may be compromised?",
        "How do I report a security vulnerability?",
        "How do I enable two-factor authentication?",
    ),
}

# Responses of decreasing quality, for human rankings: tier 1 is helpful and specific, tier 4
# is curt or refuses.
RESPONSE_TIERS: tuple[tuple[str, ...], ...] = (
    (
        "Here's how to fix this in {product}:\n1. Open Settings > {area}.\n2. {step}\n3. Confirm the change and wait a minute for it to apply.\nIf it still doesn't work, reply with the exact error message and we'll escalate it to engineering right away.",
        "Sorry for the trouble! In {product}, go to Settings > {area} and {step_lower} This resolves the issue for most customers. If you need to, you can also contact support from the same page and reference this conversation.",
        "Good question. {step} You'll find it under Settings > {area} in {product}. The change takes effect immediately, and you'll get a confirmation email once it's done.",
    ),
    (
        "You can usually fix this from the Settings page in {product}. Look for the {area} section and follow the instructions there.",
        "This is normally handled under {area} in your account settings. Let us know if you need more help.",
        "Please check the {area} section of the settings. Most issues like this can be fixed there.",
    ),
    (
        "Try restarting and see if that helps.",
        "You might want to check the help center for this.",
        "Have you tried logging out and in again?",
    ),
    (
        "I can't help with that.",
        "Please contact support.",
        "That's not something we support.",
        "Read the documentation.",
    ),
)
RESPONSE_AREAS = {
    "billing": ("Billing", "Go to Invoices and click Request refund next to the charge."),
    "technical_issue": ("Diagnostics", "Click Run diagnostics, then Repair connection."),
    "account_access": ("Security", "Choose Reset sign-in and follow the verification steps."),
    "shipping": ("Orders", "Select the order and click Track or Report a problem."),
    "cancellation": ("Subscription", "Click Manage plan, then Cancel or Downgrade."),
    "feature_request": ("Feedback", "Click Suggest a feature and describe your use case."),
    "bug_report": ("Help & Feedback", "Choose Report a bug and attach the app logs."),
    "security": ("Security", "Click Sign out everywhere, then rotate your password and keys."),
}

EVAL_ANSWERS = {
    "billing": "Open Billing > Invoices, select the charge and choose Request refund; refunds arrive in 5-10 business days.",
    "technical_issue": "Update the client, run Settings > Diagnostics > Repair connection, and send the diagnostic log if the error persists.",
    "account_access": "Use Security > Reset sign-in; support can verify your identity and reset 2FA if you have no access.",
    "shipping": "Track the order under Orders; report damaged or missing items there to get a replacement.",
    "cancellation": "Go to Subscription > Manage plan and choose Cancel or Downgrade; service stays active until the period ends.",
    "feature_request": "Submit it under Help & Feedback > Suggest a feature; the product team reviews requests monthly.",
    "bug_report": "Report it under Help & Feedback > Report a bug with the app logs attached; known issues are on the status page.",
    "security": "Sign out everywhere, change your password, rotate API keys and enable two-factor authentication.",
}

PRODUCTION_QUERIES: dict[str, tuple[str, ...]] = {
    "billing": ("refund double charge", "download invoice", "why is my bill higher", "change payment card", "annual billing discount"),
    "technical_issue": ("{hw} offline", "{error}", "sync not working", "reset {hw}", "slow uploads", "cannot connect to {product}"),
    "account_access": ("forgot password", "reset 2fa", "login loop {browser}", "account locked", "change account email"),
    "shipping": ("track order {order}", "package not delivered", "damaged {hw}", "change delivery address"),
    "cancellation": ("cancel subscription", "turn off auto renew", "delete my account", "cancel order"),
    "feature_request": ("{feature}", "request feature"),
    "bug_report": ("app crashes settings", "csv export empty", "firmware {version} wifi bug"),
    "security": ("suspicious login", "phishing email acme", "revoke api key", "enable 2fa"),
}
# Real traffic leans to access and technical problems more than the ticket archive does.
PRODUCTION_WEIGHTS = {
    "billing": 12,
    "technical_issue": 25,
    "account_access": 22,
    "shipping": 10,
    "cancellation": 8,
    "feature_request": 5,
    "bug_report": 10,
    "security": 8,
}

KB_TOPICS: dict[str, tuple[str, ...]] = {
    "billing": ("Understanding your invoice", "Requesting a refund", "Changing your billing cycle", "Updating your payment method", "How VAT is applied"),
    "technical_issue": ("Troubleshooting sync errors in {saas}", "Setting up the {hw}", "Fixing slow uploads", "Reading the status light on {hw}", "Running diagnostics"),
    "account_access": ("Resetting your password", "Setting up two-factor authentication", "Recovering a locked account", "Configuring single sign-on", "Transferring account ownership"),
    "shipping": ("Tracking your order", "Reporting a damaged delivery", "Shipping options and times", "Changing a delivery address"),
    "cancellation": ("Cancelling your subscription", "Closing your account", "Downgrading your plan", "Turning off auto-renewal"),
    "feature_request": ("How we prioritize feature requests", "Using the Acme Cloud API for automation"),
    "bug_report": ("Reporting a bug", "Collecting app logs", "Rolling back firmware on {hw}"),
    "security": ("Recognizing phishing emails", "Rotating API keys", "Our security practices", "Reviewing account activity"),
}
KB_PARAGRAPHS = (
    "This article explains {topic_lower} for {product}. It applies to all plans unless stated otherwise.",
    "Before you start, make sure you are signed in as an account owner or administrator. Some settings are hidden from members with read-only access.",
    "Open Settings > {area} in the web console. {step} Changes are saved automatically and usually take effect within a minute.",
    "If you manage several devices or workspaces, repeat these steps for each one, or use the Acme Cloud API to automate the change across your fleet.",
    "On the mobile app, the same option is under Account > {area}. The mobile app and the web console always show the same settings.",
    "Most problems are solved by updating to the latest client or firmware. You can check your version under Settings > About.",
    "If the problem continues, run the built-in diagnostics and attach the report when you contact support. This helps us resolve your request faster.",
    "Enterprise customers can also reach their account manager directly. Response times for each plan are listed on the support plans page.",
    "Note: actions in this section are recorded in the audit log, which administrators can export for compliance reviews.",
    "Related articles: see the help center sections on {area} and on keeping your account secure.",
)
