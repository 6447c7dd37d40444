"""The checkout's words in English and French: one catalogue, no build step.

The payment's `locale` wins; else the browser's Accept-Language (its first language we speak, by
q-value); else English.
"""

from __future__ import annotations

from typing import Final

LOCALES: Final = ("en", "fr")

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Pay {merchant}",
        "pay_to": "Payment to",
        "test_mode": "Test mode: no real money moves",
        "choose_method": "Choose how to pay",
        "method.mpesa": "M-Pesa",
        "method.momo": "MTN Mobile Money",
        "method.airtel": "Airtel Money",
        "method.wave": "Wave",
        "method.paystack": "Card or bank (Paystack)",
        "method.flutterwave": "Card, bank or mobile money (Flutterwave)",
        "method.stripe": "Card (Stripe)",
        "method.paypal": "PayPal",
        "method.razorpay": "Card, UPI or netbanking (Razorpay)",
        "method.cash": "Cash",
        "method.sandbox": "Sandbox (test)",
        "method.orange": "Orange Money",
        "scenario": "Test scenario",
        "scenario.pm_success": "Succeeds",
        "scenario.pm_card_declined": "Card declined",
        "scenario.pm_insufficient_funds": "Insufficient funds",
        "scenario.pm_action_success": "Needs approval, then succeeds",
        "scenario.pm_action_failure": "Needs approval, then fails",
        "phone": "Mobile money number",
        "phone_hint": "For example {example}",
        "email": "Email (for the receipt)",
        "pay": "Pay {amount}",
        "continue": "Continue",
        "approve_title": "Approve on your phone",
        "approve_body": "We sent a request to {phone}. Enter your PIN on your phone to pay {amount}.",
        "time_left": "Time left:",
        "waiting": "Waiting for the outcome…",
        "redirect_title": "Continue with {provider}",
        "redirect_body": "You will finish paying on {provider}'s page, then come back here.",
        "redirect_button": "Go to {provider}",
        "cash_title": "Pay in cash",
        "cash_body": "Pay {amount} in cash to {merchant}. This page will update once they confirm it.",
        "cash_other": "Choose another way to pay",
        "succeeded_title": "Payment received",
        "succeeded_body": "{merchant} received {amount}. Thank you.",
        "failed_title": "Payment failed",
        "failed_body": "The payment did not go through.",
        "expired_title": "The request expired",
        "expired_body": "You did not approve the payment in time.",
        "canceled_title": "Payment canceled",
        "canceled_body": "This payment was canceled by {merchant}.",
        "try_again": "Try again",
        "back_to_merchant": "Return to {merchant}",
        "no_methods": "No payment method is available for this payment.",
        "error.invalid_phone": "This is not a valid number for this country.",
        "error.method_missing": "Choose a payment method.",
        "error.csrf": "Your session expired. Please try again.",
        "error.rate_limited": "Too many attempts. Wait a minute, then try again.",
        "error.provider": "The payment provider is not answering. Please try again.",
        "error.not_retryable": "This payment can no longer be retried.",
        "error.generic": "The payment could not be started.",
        "live_updates": "This page updates by itself.",
        "reload": "Refresh status",
        "not_found_title": "Checkout not found",
        "not_found_body": "This payment page does not exist, or its link is incomplete.",
        "secure": "Secured payment page",
    },
    "fr": {
        "title": "Payer {merchant}",
        "pay_to": "Paiement à",
        "test_mode": "Mode test : aucun argent réel n’est débité",
        "choose_method": "Choisissez comment payer",
        "method.mpesa": "M-Pesa",
        "method.momo": "MTN Mobile Money",
        "method.airtel": "Airtel Money",
        "method.wave": "Wave",
        "method.paystack": "Carte ou banque (Paystack)",
        "method.flutterwave": "Carte, banque ou mobile money (Flutterwave)",
        "method.stripe": "Carte (Stripe)",
        "method.paypal": "PayPal",
        "method.razorpay": "Carte, UPI ou netbanking (Razorpay)",
        "method.cash": "Espèces",
        "method.sandbox": "Bac à sable (test)",
        "method.orange": "Orange Money",
        "scenario": "Scénario de test",
        "scenario.pm_success": "Réussit",
        "scenario.pm_card_declined": "Carte refusée",
        "scenario.pm_insufficient_funds": "Fonds insuffisants",
        "scenario.pm_action_success": "À approuver, puis réussit",
        "scenario.pm_action_failure": "À approuver, puis échoue",
        "phone": "Numéro mobile money",
        "phone_hint": "Par exemple {example}",
        "email": "E-mail (pour le reçu)",
        "pay": "Payer {amount}",
        "continue": "Continuer",
        "approve_title": "Validez sur votre téléphone",
        "approve_body": "Une demande a été envoyée au {phone}. Saisissez votre code sur votre téléphone "
        "pour payer {amount}.",
        "time_left": "Temps restant :",
        "waiting": "En attente du résultat…",
        "redirect_title": "Continuer avec {provider}",
        "redirect_body": "Vous finirez le paiement sur la page de {provider}, puis reviendrez ici.",
        "redirect_button": "Aller sur {provider}",
        "cash_title": "Payer en espèces",
        "cash_body": "Payez {amount} en espèces à {merchant}. Cette page se mettra à jour dès sa "
        "confirmation.",
        "cash_other": "Choisir un autre moyen de paiement",
        "succeeded_title": "Paiement reçu",
        "succeeded_body": "{merchant} a reçu {amount}. Merci.",
        "failed_title": "Le paiement a échoué",
        "failed_body": "Le paiement n’a pas abouti.",
        "expired_title": "La demande a expiré",
        "expired_body": "Vous n’avez pas validé le paiement à temps.",
        "canceled_title": "Paiement annulé",
        "canceled_body": "Ce paiement a été annulé par {merchant}.",
        "try_again": "Réessayer",
        "back_to_merchant": "Retour vers {merchant}",
        "no_methods": "Aucun moyen de paiement n’est disponible pour ce paiement.",
        "error.invalid_phone": "Ce numéro n’est pas valide pour ce pays.",
        "error.method_missing": "Choisissez un moyen de paiement.",
        "error.csrf": "Votre session a expiré. Veuillez réessayer.",
        "error.rate_limited": "Trop de tentatives. Attendez une minute, puis réessayez.",
        "error.provider": "Le prestataire de paiement ne répond pas. Veuillez réessayer.",
        "error.not_retryable": "Ce paiement ne peut plus être réessayé.",
        "error.generic": "Le paiement n’a pas pu être lancé.",
        "live_updates": "Cette page se met à jour toute seule.",
        "reload": "Actualiser",
        "not_found_title": "Page de paiement introuvable",
        "not_found_body": "Cette page de paiement n’existe pas, ou son lien est incomplet.",
        "secure": "Page de paiement sécurisée",
    },
}


def _accepted(header: str | None) -> list[str]:
    """Accept-Language's primary tags, best first (stable for equal q)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if tag:
            ranked.append((-q, i, tag.split("-")[0].lower()))
    return [tag for q, _, tag in sorted(ranked) if q < 0]


def pick_locale(payment_locale: str | None, accept_language: str | None) -> str:
    if payment_locale in LOCALES:
        return payment_locale
    for tag in _accepted(accept_language):
        if tag in LOCALES:
            return tag
    return "en"


class Messages:
    """One locale's catalogue for a template: `t("pay", amount=...)`."""

    def __init__(self, locale: str):
        self.locale = locale
        self._table = MESSAGES[locale]

    def __call__(self, key: str, **values: str) -> str:
        text = self._table.get(key) or MESSAGES["en"].get(key) or key
        return text.format(**values) if values else text
